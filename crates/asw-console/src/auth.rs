//! Who is using the console: the login page, sessions in a cookie (HttpOnly, SameSite=Strict,
//! Secure under TLS) that expire, a CSRF token for every action, login attempts limited per
//! user name, and the gate every action passes (a viewer's request is refused with 403 and
//! written to the audit log).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use time::OffsetDateTime;

use crate::api::ApiError;
use crate::audit::AuditEntry;
use crate::users::{Role, Users};
use crate::views::rfc3339;
use crate::{AuditLog, Console};

/// The session cookie's name.
pub const COOKIE: &str = "asw_console";
/// Failed logins of one name within [`LOGIN_WINDOW`] after which more are refused.
pub const MAX_FAILED_LOGINS: usize = 5;
/// The window of [`MAX_FAILED_LOGINS`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user's name.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// The token every action must bring (form field `csrf` or header `X-CSRF-Token`).
    pub csrf: String,
    expires: Instant,
}

/// The sessions and login attempts of one console.
#[derive(Debug)]
pub struct Sessions {
    users_file: PathBuf,
    lifetime: Duration,
    secure: bool,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

/// 256 random bits as hex (two version-4 UUIDs' random bits and more).
fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// Sessions of `lifetime` for the accounts of `users_file`; `secure`: the console is
    /// served over TLS, so the cookie says `Secure`.
    pub fn new(users_file: impl Into<PathBuf>, lifetime: Duration, secure: bool) -> Sessions {
        Sessions {
            users_file: users_file.into(),
            lifetime,
            secure,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The session the request's cookie names, if it has not expired.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.get(&id).cloned()
    }

    /// Whether `name` may try to log in now (fewer than [`MAX_FAILED_LOGINS`] recent failures).
    fn may_try(&self, name: &str) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let list = failures.entry(name.to_owned()).or_default();
        list.retain(|t| now.duration_since(*t) < LOGIN_WINDOW);
        list.len() < MAX_FAILED_LOGINS
    }

    fn failed(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .entry(name.to_owned())
            .or_default()
            .push(Instant::now());
    }

    /// Checks `name` and `password` against the accounts file; a new session's id on success.
    fn login(&self, name: &str, password: &str) -> Result<String, LoginRefused> {
        if !self.may_try(name) {
            return Err(LoginRefused::TooMany);
        }
        let users = Users::load(&self.users_file).map_err(|_| LoginRefused::Unavailable)?;
        // An unknown name costs the same as a wrong password: hash something anyway.
        let ok = match users.find(name) {
            Some(user) => user.verify(password).then_some(user.role),
            None => {
                let _ = users.all().first().map(|u| u.verify(password));
                None
            }
        };
        let Some(role) = ok else {
            self.failed(name);
            return Err(LoginRefused::Wrong);
        };
        let id = token();
        let session = Session {
            user: name.to_owned(),
            role,
            csrf: token(),
            expires: Instant::now() + self.lifetime,
        };
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), session);
        Ok(id)
    }

    fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }

    /// The `Set-Cookie` value of session `id` (empty and expired: the logout).
    fn set_cookie(&self, id: Option<&str>) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        match id {
            Some(id) => format!(
                "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                self.lifetime.as_secs()
            ),
            None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
        }
    }
}

enum LoginRefused {
    Wrong,
    TooMany,
    Unavailable,
}

/// The session id of the request's cookie.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

/// The fields of a form body.
pub fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An HTML page: the console's frame around `body` (already escaped where it must be).
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} - aswhub console</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>\n",
        escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// The console's style sheet: readable tables on a laptop screen.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}\
main{max-width:72rem;margin:1.5rem auto;padding:0 1rem}\
form.login{max-width:22rem;display:grid;gap:.6rem}\
input,button{font-size:1rem;padding:.4rem}.error{color:#a40000}";

/// `text` with HTML's special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    page(
        status,
        "Log in",
        &format!(
            "<h1>aswhub console</h1>{message}<form class=\"login\" method=\"post\" action=\"/login\">\
             <label>User <input name=\"user\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Log in</button></form>"
        ),
    )
}

async fn get_login() -> Response {
    login_page(StatusCode::OK, None)
}

async fn post_login(Shared(console): Shared<Arc<Console>>, body: Bytes) -> Response {
    let fields = form(&body);
    let given = |name: &str| fields.get(name).filter(|v| !v.is_empty());
    let (Some(user), Some(password)) = (given("user"), given("password")) else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("Give a user name and a password."),
        );
    };
    let (user, password) = (user.clone(), password.clone());
    let sessions = console.clone();
    let outcome = tokio::task::spawn_blocking(move || sessions.sessions.login(&user, &password))
        .await
        .unwrap_or(Err(LoginRefused::Unavailable));
    match outcome {
        Ok(id) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, console.sessions.set_cookie(Some(&id))),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response(),
        Err(LoginRefused::Wrong) => login_page(
            StatusCode::UNAUTHORIZED,
            Some("That user name and password do not match."),
        ),
        Err(LoginRefused::TooMany) => login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed attempts for this user: wait a few minutes."),
        ),
        Err(LoginRefused::Unavailable) => login_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The accounts file cannot be read; ask the hub's administrator."),
        ),
    }
}

async fn post_logout(Shared(console): Shared<Arc<Console>>, headers: HeaderMap) -> Response {
    console.sessions.logout(&headers);
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, console.sessions.set_cookie(None)),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response()
}

/// `/login` (the page and the form's target) and `/logout`, open to anyone.
pub fn routes(console: Arc<Console>) -> Router {
    Router::new()
        .route("/login", get(get_login).post(post_login))
        .route("/logout", post(post_logout))
        .with_state(console)
}

/// Lets a request with a live session through (the session in its extensions); without one,
/// the API answers 401 JSON and a page redirects to the login.
pub async fn require_session(
    Shared(console): Shared<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    match console.sessions.of(request.headers()) {
        Some(session) => {
            request.extensions_mut().insert(session);
            next.run(request).await
        }
        None if request.uri().path().starts_with("/api/") => ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "log in first (POST /login)".into(),
        }
        .into_response(),
        None => (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response(),
    }
}

/// Lets an action through only with the session's CSRF token and a role that may act; a
/// refusal by role is written to the audit log. `action` and `target` name what was asked.
pub fn authorize(
    audit: &AuditLog,
    session: &Session,
    presented_csrf: Option<&str>,
    action: &str,
    target: &str,
) -> Result<(), ApiError> {
    authorize_csrf(session, presented_csrf)?;
    if session.role.may_act() {
        return Ok(());
    }
    let entry = AuditEntry {
        at: rfc3339(OffsetDateTime::now_utc()),
        user: session.user.clone(),
        role: session.role.as_str().into(),
        action: action.into(),
        target: target.into(),
        outcome: "refused".into(),
        detail: format!("a {} may not {action}", session.role),
    };
    audit
        .append(&entry)
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Err(ApiError {
        status: StatusCode::FORBIDDEN,
        code: "forbidden",
        message: format!(
            "{} is a {}: only an operator may {action}",
            session.user, session.role
        ),
    })
}

/// Lets a request through only with the session's CSRF token (compared in constant time).
pub fn authorize_csrf(session: &Session, presented_csrf: Option<&str>) -> Result<(), ApiError> {
    let csrf_ok = presented_csrf.is_some_and(|t| {
        t.len() == session.csrf.len()
            && t.bytes()
                .zip(session.csrf.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if csrf_ok {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "the request has no valid CSRF token (reload the page)".into(),
        })
    }
}

/// The session's CSRF token, for the pages and scripts (`GET /api/session`).
pub fn session_json(session: &Session) -> serde_json::Value {
    json!({ "user": session.user, "role": session.role.as_str(), "csrf": session.csrf })
}
