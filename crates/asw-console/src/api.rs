//! The console's JSON API, read side: overview counts, messages with filters, one message with
//! its history and exact bytes, a conversation, parked messages, partners and their channels,
//! the trust store, the audit log. Every listing is paged on the server (`page`, `per_page`).
//! Documented in `docs/console-api.yaml`; a test checks that file against [`ROUTES`].
//!
//! Bad input (an unknown parameter, a malformed id or time) gets a 400 with a JSON error that
//! says which parameter and why; an unknown message a 404; a journal failure a 503. Never a
//! trace.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use asw_journal::{Direction, Filter, MessageSummary, State};
use asw_model::{DocumentKind, MemberState};
use axum::Router;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::Console;
use crate::views::{DocumentView, HistoryView, SignatureView, SummaryView, rfc3339};

/// Every route of the API: method and path (axum's `{name}` for a path parameter).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/overview"),
    ("GET", "/api/messages"),
    ("GET", "/api/messages/{direction}/{id}"),
    ("GET", "/api/messages/{direction}/{id}/document"),
    ("GET", "/api/conversations/{id}"),
    ("GET", "/api/parked"),
    ("GET", "/api/partners"),
    ("GET", "/api/certificates"),
    ("GET", "/api/audit"),
    ("GET", "/api/session"),
    ("POST", "/api/replay"),
    ("POST", "/api/discard"),
];

/// The routes open to anyone (the login), documented with the API.
pub const OPEN_ROUTES: &[(&str, &str)] =
    &[("GET", "/login"), ("POST", "/login"), ("POST", "/logout")];

/// A page's size when the request does not say.
pub const DEFAULT_PER_PAGE: u32 = 50;
/// The largest page.
pub const MAX_PER_PAGE: u32 = 500;
/// The most messages the overview counts over its week; more are reported as `truncated`.
pub const OVERVIEW_MAX: u32 = 200_000;

type Handler = MethodRouter<Arc<Console>>;

/// The handler of each route in [`ROUTES`], in the same order.
fn handlers() -> [Handler; 12] {
    [
        get(overview),
        get(messages),
        get(message),
        get(document),
        get(conversation),
        get(parked),
        get(partners),
        get(certificates),
        get(audit),
        get(session),
        axum::routing::post(replay),
        axum::routing::post(discard),
    ]
}

/// The API's routes over `console`, to merge into the hub's HTTP server.
pub fn routes(console: Arc<Console>) -> Router {
    ROUTES
        .iter()
        .zip(handlers())
        .fold(Router::new(), |router, ((_, path), handler)| {
            router.route(path, handler)
        })
        .with_state(console)
}

/// An error answer: status, a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `bad-request`, `not-found`, `forbidden`, `unavailable`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// A 400: `message` says which input and why.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad-request",
            message: message.into(),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not-found",
            message: message.into(),
        }
    }

    /// A 503: the journal or the audit log failed; `message` says which, not how.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "status": self.status.as_u16(), "code": self.code, "message": self.message } });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            format!("{body}\n"),
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// `value` as a JSON answer.
fn ok_json(value: &impl Serialize) -> ApiResult {
    let text = serde_json::to_string(value)
        .map_err(|e| ApiError::unavailable(format!("cannot serialise the answer: {e}")))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

/// Runs `f` (which reads the journal, and so may block) off the reactor.
pub(crate) async fn blocking<T: Send + 'static>(
    console: Arc<Console>,
    f: impl FnOnce(&Console) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(&console))
        .await
        .map_err(|_| ApiError::unavailable("the query did not finish"))?
}

/// A journal failure as a 503. The journal's errors name the operation and the database
/// (without its password), never a trace.
fn journal_error(e: asw_journal::JournalError) -> ApiError {
    ApiError::unavailable(format!("the journal cannot answer now: {e}"))
}

/// The query parameters, each once, checked against `allowed`.
#[derive(Debug, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses `query`; an unknown or repeated parameter is a 400.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut values = BTreeMap::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {name:?}; this endpoint takes {}",
                    allowed.join(", ")
                )));
            }
            if value.is_empty() {
                // An empty form field means "any".
                continue;
            }
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::bad_request(format!(
                    "parameter {name:?} is given twice"
                )));
            }
        }
        Ok(Params { values })
    }

    /// The text of `name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `name` parsed as `T`, if given; `what` says what it should be.
    pub fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|text| {
                text.parse()
                    .map_err(|_| ApiError::bad_request(format!("{name}: {text:?} is not {what}")))
            })
            .transpose()
    }

    /// `name` as an RFC 3339 instant, if given.
    pub fn time(&self, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
        self.text(name)
            .map(|text| {
                OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                    ApiError::bad_request(format!(
                        "{name}: {text:?} is not an RFC 3339 time (2026-12-02T08:00:00Z)"
                    ))
                })
            })
            .transpose()
    }

    /// The page asked for: its number (from 1) and size.
    pub fn page(&self) -> Result<Page, ApiError> {
        let number: u32 = self.parsed("page", "a page number")?.unwrap_or(1);
        let size: u32 = self
            .parsed("per_page", "a page size")?
            .unwrap_or(DEFAULT_PER_PAGE);
        if number == 0 || number > 1_000_000 {
            return Err(ApiError::bad_request(
                "page: pages are numbered from 1 to 1000000",
            ));
        }
        if size == 0 || size > MAX_PER_PAGE {
            return Err(ApiError::bad_request(format!(
                "per_page: a page holds 1 to {MAX_PER_PAGE} items"
            )));
        }
        Ok(Page { number, size })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// From 1.
    pub number: u32,
    /// Items on a page.
    pub size: u32,
}

impl Page {
    /// Items before this page.
    pub fn offset(self) -> u32 {
        (self.number - 1).saturating_mul(self.size)
    }
}

/// A page of items, with whether more follow.
#[derive(Debug, Serialize)]
pub struct Paged<T> {
    /// The page number.
    pub page: u32,
    /// Items on a full page.
    pub per_page: u32,
    /// Whether a next page has items.
    pub more: bool,
    /// The items.
    pub items: Vec<T>,
}

impl<T> Paged<T> {
    /// The page of `items`, which holds up to one more than the page (the sign of a next one).
    fn of(page: Page, mut items: Vec<T>) -> Paged<T> {
        let more = items.len() > page.size as usize;
        items.truncate(page.size as usize);
        Paged {
            page: page.number,
            per_page: page.size,
            more,
            items,
        }
    }
}

/// The partner of a message: who sent it to us, or whom we sent it to.
pub fn partner_of(m: &MessageSummary) -> MemberState {
    match m.direction {
        Direction::Outbound => m.header.receiver,
        Direction::Inbound => m.header.sender,
    }
}

/// What a messages query asks for, parsed from its parameters.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// One message id.
    pub id: Option<Uuid>,
    /// The journal filter of the other parameters.
    pub filter: Filter,
}

/// The parameters `/api/messages` (and the messages page) take.
pub const MESSAGE_PARAMS: &[&str] = &[
    "id",
    "partner",
    "kind",
    "direction",
    "state",
    "since",
    "until",
    "reason_code",
    "q",
    "order",
    "page",
    "per_page",
];

impl MessageQuery {
    /// The query of `params` for `page`.
    pub fn of(params: &Params, page: Page) -> Result<MessageQuery, ApiError> {
        let order = params.text("order").unwrap_or("newest");
        let newest_first = match order {
            "newest" => true,
            "oldest" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "order: {other:?} is not newest or oldest"
                )));
            }
        };
        let since = params.time("since")?;
        let until = params.time("until")?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err(ApiError::bad_request("since: must be before until"));
        }
        Ok(MessageQuery {
            id: params.parsed("id", "a message id (UUID)")?,
            filter: Filter {
                direction: params.parsed("direction", "inbound or outbound")?,
                kind: params.parsed("kind", "a document kind (formd, acdd, ...)")?,
                partner: params.parsed("partner", "a member state code (SG, VN, ...)")?,
                state: params.parsed("state", "a journal state (failed, delivered, ...)")?,
                since,
                until,
                reason_code: params.text("reason_code").map(str::to_owned),
                reason_text: params.text("q").map(str::to_owned),
                newest_first,
                offset: page.offset(),
                // One more than the page: whether a next page has any.
                limit: page.size + 1,
            },
        })
    }

    /// Whether `m` passes (for the messages found by id, which the journal filter did not see).
    fn passes(&self, m: &MessageSummary) -> bool {
        let f = &self.filter;
        f.direction.is_none_or(|d| d == m.direction)
            && f.kind.is_none_or(|k| k == m.header.kind)
            && f.partner
                .is_none_or(|p| p == m.header.sender || p == m.header.receiver)
            && f.state.is_none_or(|s| s == m.state)
            && f.since.is_none_or(|s| m.updated_at >= s)
            && f.until.is_none_or(|u| m.updated_at < u)
            && f.reason_code
                .as_ref()
                .is_none_or(|c| m.reason.as_ref().is_some_and(|r| &r.code == c))
            && f.reason_text.as_ref().is_none_or(|t| {
                m.reason.as_ref().is_some_and(|r| {
                    r.text
                        .to_ascii_lowercase()
                        .contains(&t.to_ascii_lowercase())
                })
            })
    }

    /// The messages of the query's page.
    pub fn run(&self, console: &Console) -> Result<Vec<MessageSummary>, ApiError> {
        match self.id {
            Some(id) => {
                let found = crate::query::records(&*console.journal, id, self.filter.direction)
                    .map_err(journal_error)?;
                Ok(found
                    .into_iter()
                    .map(|r| r.summary)
                    .filter(|m| self.passes(m))
                    .skip(self.filter.offset as usize)
                    .take(self.filter.limit as usize)
                    .collect())
            }
            None => console.journal.list(&self.filter).map_err(journal_error),
        }
    }
}

async fn messages(Shared(console): Shared<Arc<Console>>, RawQuery(query): RawQuery) -> ApiResult {
    let params = Params::parse(query.as_deref(), MESSAGE_PARAMS)?;
    let page = params.page()?;
    let query = MessageQuery::of(&params, page)?;
    let found = blocking(console, move |c| query.run(c)).await?;
    ok_json(&Paged::of(
        page,
        found.iter().map(SummaryView::from).collect(),
    ))
}

/// The direction and id of a message path.
pub fn message_key(direction: &str, id: &str) -> Result<(Direction, Uuid), ApiError> {
    let direction: Direction = direction
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{direction:?} is not inbound or outbound")))?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a message id (UUID)")))?;
    Ok((direction, id))
}

/// One message in full.
#[derive(Debug, Serialize)]
pub struct MessageDetail {
    /// The journal record.
    #[serde(flatten)]
    pub summary: SummaryView,
    /// The partner.
    pub partner: &'static str,
    /// Every state it entered, oldest first.
    pub history: Vec<HistoryView>,
    /// Who signed the exact bytes, if they are signed: the signer, the certificate's subject
    /// and SHA-256 fingerprint.
    pub signature: Option<SignatureView>,
    /// The exact bytes (the text of a UTF-8 document).
    pub document: DocumentView,
    /// Where the exact bytes are downloaded.
    pub document_url: String,
}

/// The message `direction`/`id` with its history; a 404 when it is not journaled.
pub fn detail(
    console: &Console,
    direction: Direction,
    id: Uuid,
) -> Result<(MessageDetail, Vec<u8>), ApiError> {
    let record = console
        .journal
        .get(direction, id)
        .map_err(journal_error)?
        .ok_or_else(|| {
            ApiError::not_found(format!("{direction} message {id} is not in the journal"))
        })?;
    let history = console
        .journal
        .history(direction, id)
        .map_err(journal_error)?;
    let detail = MessageDetail {
        summary: SummaryView::from(&record.summary),
        partner: partner_of(&record.summary).code(),
        history: history.iter().map(HistoryView::from).collect(),
        signature: SignatureView::of(
            &record.bytes,
            &(console.trust)(),
            (direction == Direction::Outbound).then_some(console.country),
        ),
        document: DocumentView::of(&record.bytes),
        document_url: format!("/api/messages/{direction}/{id}/document"),
    };
    Ok((detail, record.bytes))
}

async fn message(
    Shared(console): Shared<Arc<Console>>,
    Path((direction, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    Params::parse(query.as_deref(), &[])?;
    let (direction, id) = message_key(&direction, &id)?;
    let (detail, _) = blocking(console, move |c| detail(c, direction, id)).await?;
    ok_json(&detail)
}

async fn document(
    Shared(console): Shared<Arc<Console>>,
    Path((direction, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    Params::parse(query.as_deref(), &[])?;
    let (direction, id) = message_key(&direction, &id)?;
    let bytes = blocking(console, move |c| {
        c.journal
            .get(direction, id)
            .map_err(journal_error)?
            .map(|r| r.bytes)
            .ok_or_else(|| {
                ApiError::not_found(format!("{direction} message {id} is not in the journal"))
            })
    })
    .await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/xml".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{direction}-{id}.xml\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn conversation(
    Shared(console): Shared<Arc<Console>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    Params::parse(query.as_deref(), &[])?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a message id (UUID)")))?;
    let found = blocking(console, move |c| {
        crate::query::conversation(&*c.journal, id)
            .map_err(journal_error)?
            .ok_or_else(|| ApiError::not_found(format!("message {id} is not in the journal")))
    })
    .await?;
    ok_json(&json!({
        "message_id": id.to_string(),
        "messages": found.iter().map(SummaryView::from).collect::<Vec<_>>(),
    }))
}

/// The journal states an operator acts on: replay or discard.
pub const PARKED_STATES: [State; 2] = [State::Failed, State::Rejected];

/// The parameters `/api/parked` takes.
pub const PARKED_PARAMS: &[&str] = &[
    "partner",
    "kind",
    "direction",
    "state",
    "reason_code",
    "q",
    "page",
    "per_page",
];

/// The parked messages (journal states `failed` and `rejected`) that pass `params`, newest
/// first, for `page`.
pub fn parked_page(
    console: &Console,
    params: &Params,
    page: Page,
) -> Result<Paged<MessageSummary>, ApiError> {
    let state: Option<State> = params.parsed("state", "failed or rejected")?;
    if let Some(state) = state
        && !PARKED_STATES.contains(&state)
    {
        return Err(ApiError::bad_request(format!(
            "state: {state} is not a parked state (failed, rejected)"
        )));
    }
    let mut found = Vec::new();
    for s in PARKED_STATES {
        if state.is_some_and(|want| want != s) {
            continue;
        }
        let filter = Filter {
            direction: params.parsed("direction", "inbound or outbound")?,
            kind: params.parsed("kind", "a document kind (formd, acdd, ...)")?,
            partner: params.parsed("partner", "a member state code (SG, VN, ...)")?,
            state: Some(s),
            reason_code: params.text("reason_code").map(str::to_owned),
            reason_text: params.text("q").map(str::to_owned),
            newest_first: true,
            limit: page.offset() + page.size + 1,
            ..Filter::default()
        };
        found.extend(console.journal.list(&filter).map_err(journal_error)?);
    }
    found.sort_by(|a, b| {
        (b.updated_at, b.direction, b.header.message_id).cmp(&(
            a.updated_at,
            a.direction,
            a.header.message_id,
        ))
    });
    let items = found.into_iter().skip(page.offset() as usize).collect();
    Ok(Paged::of(page, items))
}

async fn parked(Shared(console): Shared<Arc<Console>>, RawQuery(query): RawQuery) -> ApiResult {
    let params = Params::parse(query.as_deref(), PARKED_PARAMS)?;
    let page = params.page()?;
    let found = blocking(console, move |c| parked_page(c, &params, page)).await?;
    ok_json(&Paged {
        page: found.page,
        per_page: found.per_page,
        more: found.more,
        items: found.items.iter().map(SummaryView::from).collect(),
    })
}

/// Counts of one partner and kind over one window.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Outbound messages handed to the partner (queued, sent, awaiting its receipt, acknowledged).
    pub sent: u64,
    /// Inbound messages taken in.
    pub received: u64,
    /// Messages failed or rejected (an operator is to look).
    pub parked: u64,
    /// Outbound messages whose receipt has not come (sent, awaiting-ack).
    pub awaiting_receipt: u64,
}

impl Counts {
    fn add(&mut self, m: &MessageSummary) {
        match (m.direction, m.state) {
            (_, State::Failed | State::Rejected) => self.parked += 1,
            (Direction::Inbound, _) => self.received += 1,
            (Direction::Outbound, State::Sent | State::AwaitingAck) => {
                self.sent += 1;
                self.awaiting_receipt += 1;
            }
            (Direction::Outbound, State::Queued | State::Acknowledged) => self.sent += 1,
            (Direction::Outbound, _) => {}
        }
    }
}

/// The overview's windows, by name and length.
pub const WINDOWS: [(&str, time::Duration); 3] = [
    ("hour", time::Duration::HOUR),
    ("day", time::Duration::DAY),
    ("week", time::Duration::WEEK),
];

/// The overview: counts per partner and kind over the last hour, day and week (by last
/// update), the channels, and the certificates expiring soon.
#[derive(Debug, Serialize)]
pub struct Overview {
    /// When it was computed.
    pub at: String,
    /// The member state the hub serves.
    pub country: &'static str,
    /// One row for each partner and kind seen in the week.
    pub rows: Vec<OverviewRow>,
    /// Totals over all partners and kinds, by window.
    pub totals: BTreeMap<&'static str, Counts>,
    /// Whether the week held more than [`OVERVIEW_MAX`] messages (the counts then cover the
    /// newest of them only).
    pub truncated: bool,
    /// The partner channels' health.
    pub channels: Vec<ChannelView>,
    /// The hub's broker session (`None`: a console without a hub).
    pub broker: Option<BrokerSessionView>,
    /// Certificates that expire within the warning days (or have).
    pub certificates_expiring: Vec<CertificateView>,
}

/// The hub's broker session.
#[derive(Debug, Serialize)]
pub struct BrokerSessionView {
    /// Whether the hub holds a broker connection now.
    pub connected: bool,
    /// Since when it does (or does not); `None` before the first connection.
    pub since: Option<String>,
    /// Sessions that ended and were started again since the hub started.
    pub reconnects: u64,
}

/// The broker session now, if the console has a hub.
pub fn broker_now(console: &Console) -> Option<BrokerSessionView> {
    console.broker_session.as_ref().map(|session| {
        let s = session();
        BrokerSessionView {
            connected: s.connected,
            since: s.since.map(rfc3339),
            reconnects: s.reconnects,
        }
    })
}

/// One partner and kind of the overview.
#[derive(Debug, Serialize)]
pub struct OverviewRow {
    /// The partner.
    pub partner: &'static str,
    /// The document kind.
    pub kind: &'static str,
    /// Counts by window (`hour`, `day`, `week`).
    pub windows: BTreeMap<&'static str, Counts>,
}

/// The overview now.
pub fn overview_now(console: &Console) -> Result<Overview, ApiError> {
    let now = OffsetDateTime::now_utc();
    let filter = Filter {
        since: Some(now - time::Duration::WEEK),
        newest_first: true,
        limit: OVERVIEW_MAX + 1,
        ..Filter::default()
    };
    let mut week = console.journal.list(&filter).map_err(journal_error)?;
    let truncated = week.len() > OVERVIEW_MAX as usize;
    week.truncate(OVERVIEW_MAX as usize);
    let mut rows: BTreeMap<(MemberState, DocumentKind), BTreeMap<&'static str, Counts>> =
        BTreeMap::new();
    let mut totals: BTreeMap<&'static str, Counts> = WINDOWS
        .iter()
        .map(|(w, _)| (*w, Counts::default()))
        .collect();
    for m in &week {
        let row = rows.entry((partner_of(m), m.header.kind)).or_default();
        for (name, length) in WINDOWS {
            if m.updated_at >= now - length {
                row.entry(name).or_default().add(m);
                totals.entry(name).or_default().add(m);
            }
        }
    }
    Ok(Overview {
        at: rfc3339(now),
        country: console.country.code(),
        rows: rows
            .into_iter()
            .map(|((partner, kind), mut windows)| {
                for (name, _) in WINDOWS {
                    windows.entry(name).or_default();
                }
                OverviewRow {
                    partner: partner.code(),
                    kind: kind.as_str(),
                    windows,
                }
            })
            .collect(),
        totals,
        truncated,
        channels: channels_now(console),
        broker: broker_now(console),
        certificates_expiring: certificates_now(console, now)
            .into_iter()
            .filter(|c| c.expiring)
            .collect(),
    })
}

async fn overview(Shared(console): Shared<Arc<Console>>, RawQuery(query): RawQuery) -> ApiResult {
    Params::parse(query.as_deref(), &[])?;
    ok_json(&blocking(console, overview_now).await?)
}

/// A partner channel's health.
#[derive(Debug, Serialize)]
pub struct ChannelView {
    /// The partner.
    pub partner: &'static str,
    /// `pull` or `push`.
    pub channel: &'static str,
    /// `up`, `down` or `unknown`.
    pub status: &'static str,
    /// Since when.
    pub since: String,
    /// What it last saw.
    pub detail: String,
}

/// The channels now.
pub fn channels_now(console: &Console) -> Vec<ChannelView> {
    (console.channels)()
        .into_iter()
        .map(|c| ChannelView {
            partner: c.partner.code(),
            channel: c.channel,
            status: match c.up {
                Some(true) => "up",
                Some(false) => "down",
                None => "unknown",
            },
            since: rfc3339(c.since),
            detail: c.detail,
        })
        .collect()
}

/// A trust store certificate.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    /// The member state it is trusted for.
    pub partner: &'static str,
    /// Its subject.
    pub subject: String,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// Valid from.
    pub not_before: String,
    /// Valid until.
    pub not_after: String,
    /// Whole days left (negative: expired).
    pub days_left: i64,
    /// Whether it expires within the warning days.
    pub expiring: bool,
    /// Its key.
    pub key: String,
    /// The file it came from.
    pub file: String,
}

/// The trust store now.
pub fn certificates_now(console: &Console, now: OffsetDateTime) -> Vec<CertificateView> {
    let trust = (console.trust)();
    trust
        .certificates()
        .iter()
        .map(|c| {
            let info = c.info();
            CertificateView {
                partner: c.member_state().code(),
                subject: info.subject().to_owned(),
                fingerprint: info.fingerprint().to_owned(),
                not_before: rfc3339(info.not_before()),
                not_after: rfc3339(info.not_after()),
                days_left: info.days_left(now),
                expiring: info.expires_within(console.expiry_warning_days, now),
                key: info.key().to_owned(),
                file: c.path().display().to_string(),
            }
        })
        .collect()
}

async fn certificates(
    Shared(console): Shared<Arc<Console>>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    Params::parse(query.as_deref(), &[])?;
    let now = OffsetDateTime::now_utc();
    ok_json(&json!({
        "warning_days": console.expiry_warning_days,
        "certificates": certificates_now(&console, now),
    }))
}

/// A partner, its channels and certificates.
#[derive(Debug, Serialize)]
pub struct PartnerView {
    /// The member state.
    pub partner: &'static str,
    /// Its channels.
    pub channels: Vec<ChannelView>,
    /// How many certificates the trust store holds for it.
    pub certificates: usize,
    /// The fewest days left among them (`None`: none).
    pub certificate_days_left: Option<i64>,
}

/// The partners now.
pub fn partners_now(console: &Console) -> Vec<PartnerView> {
    let now = OffsetDateTime::now_utc();
    let channels = channels_now(console);
    let certificates = certificates_now(console, now);
    console
        .partners
        .iter()
        .map(|p| {
            let code = p.code();
            let mine: Vec<&CertificateView> =
                certificates.iter().filter(|c| c.partner == code).collect();
            PartnerView {
                partner: code,
                channels: channels
                    .iter()
                    .filter(|c| c.partner == code)
                    .map(|c| ChannelView {
                        partner: c.partner,
                        channel: c.channel,
                        status: c.status,
                        since: c.since.clone(),
                        detail: c.detail.clone(),
                    })
                    .collect(),
                certificates: mine.len(),
                certificate_days_left: mine.iter().map(|c| c.days_left).min(),
            }
        })
        .collect()
}

async fn partners(Shared(console): Shared<Arc<Console>>, RawQuery(query): RawQuery) -> ApiResult {
    Params::parse(query.as_deref(), &[])?;
    ok_json(&json!({ "country": console.country.code(), "partners": partners_now(&console) }))
}

async fn audit(Shared(console): Shared<Arc<Console>>, RawQuery(query): RawQuery) -> ApiResult {
    let params = Params::parse(query.as_deref(), &["page", "per_page"])?;
    let page = params.page()?;
    let entries = blocking(console, move |c| {
        c.audit
            .read(page.offset() as usize, page.size as usize + 1)
            .map_err(|e| ApiError::unavailable(e.to_string()))
    })
    .await?;
    ok_json(&Paged::of(page, entries))
}

#[cfg(test)]
mod tests;

async fn session(axum::Extension(session): axum::Extension<crate::auth::Session>) -> ApiResult {
    ok_json(&crate::auth::session_json(&session))
}

/// An action's request: the messages (`direction/id`), and for a discard the reason.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// `outbound/<id>` or `inbound/<id>`, one or more.
    pub messages: Vec<String>,
    /// Only say what would happen.
    #[serde(default)]
    pub dry_run: bool,
    /// Why (a discard must say).
    #[serde(default)]
    pub reason: Option<String>,
    /// The CSRF token, when not in the `X-CSRF-Token` header.
    #[serde(default)]
    pub csrf: Option<String>,
}

/// The most messages one action takes.
pub const MAX_ACTION_MESSAGES: usize = 500;

/// Parses an action's JSON body and checks its session, CSRF token and role.
fn action_request(
    console: &Console,
    session: &crate::auth::Session,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    action: &str,
) -> Result<(ActionRequest, Vec<(Direction, Uuid)>), ApiError> {
    let request: ActionRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not an action request ({{\"messages\": [\"outbound/<id>\"], ...}}): {e}"
        ))
    })?;
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.csrf.clone());
    let keys = authorize_action(
        console,
        session,
        presented.as_deref(),
        &request.messages,
        request.dry_run,
        action,
    )?;
    Ok((request, keys))
}

/// Checks an action on `messages` (`direction/id`): the CSRF token always, the role (refusals
/// audited) unless it is a dry run, then the messages. Shared by the API and the pages.
pub fn authorize_action(
    console: &Console,
    session: &crate::auth::Session,
    presented_csrf: Option<&str>,
    messages: &[String],
    dry_run: bool,
    action: &str,
) -> Result<Vec<(Direction, Uuid)>, ApiError> {
    let target = messages.join(" ");
    let action_name = if dry_run {
        format!("{action}-dry-run")
    } else {
        action.to_owned()
    };
    // A dry run changes nothing: a viewer may ask what would happen. It still needs the token.
    if dry_run {
        crate::auth::authorize_csrf(session, presented_csrf)?;
    } else {
        crate::auth::authorize(
            &console.audit,
            session,
            presented_csrf,
            &action_name,
            &target,
        )?;
    }
    if messages.is_empty() || messages.len() > MAX_ACTION_MESSAGES {
        return Err(ApiError::bad_request(format!(
            "messages: give 1 to {MAX_ACTION_MESSAGES} messages"
        )));
    }
    messages
        .iter()
        .map(|m| {
            let (d, id) = m.split_once('/').ok_or_else(|| {
                ApiError::bad_request(format!("messages: {m:?} is not direction/id"))
            })?;
            message_key(d, id)
        })
        .collect()
}

/// What a replay would do to each message, from the journal: back to the stage that failed,
/// or nothing (not parked, or not journaled).
pub fn replay_plan(
    console: &Console,
    keys: &[(Direction, Uuid)],
) -> Result<Vec<serde_json::Value>, ApiError> {
    keys.iter()
        .map(|&(direction, id)| {
            let found = console.journal.get(direction, id).map_err(journal_error)?;
            let (would, detail) = match found.map(|r| r.summary) {
                None => (false, "not in the journal".to_owned()),
                Some(s) if !PARKED_STATES.contains(&s.state) => {
                    (false, format!("{}: not parked, left as it is", s.state))
                }
                Some(s) => {
                    let to = asw_journal::replay_target(
                        direction,
                        s.parked_from.unwrap_or(State::Received),
                    );
                    (
                        true,
                        format!("{} -> {to}: the hub runs that stage again", s.state),
                    )
                }
            };
            Ok(json!({ "message": format!("{direction}/{id}"), "would_replay": would, "detail": detail }))
        })
        .collect()
}

async fn replay(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<crate::auth::Session>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    blocking(console, move |c| {
        let (request, keys) = action_request(c, &session, &headers, &body, "replay")?;
        if !request.dry_run {
            let done = crate::actions::act(c, &session, &keys, &crate::actions::Action::Replay)?;
            return ok_json(&json!({ "dry_run": false, "messages": crate::actions::json(&done) }));
        }
        let plan = replay_plan(c, &keys)?;
        ok_json(&json!({ "dry_run": true, "messages": plan }))
    })
    .await
}

async fn discard(
    Shared(console): Shared<Arc<Console>>,
    axum::Extension(session): axum::Extension<crate::auth::Session>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    blocking(console, move |c| {
        let (request, keys) = action_request(c, &session, &headers, &body, "discard")?;
        if request.dry_run {
            return Err(ApiError::bad_request(
                "dry_run: a discard has none (ask /api/parked what is parked)",
            ));
        }
        let reason = discard_reason(request.reason.as_deref())?;
        let done =
            crate::actions::act(c, &session, &keys, &crate::actions::Action::Discard(reason))?;
        ok_json(&json!({ "messages": crate::actions::json(&done) }))
    })
    .await
}

/// A discard's reason, trimmed; it must say something.
pub(crate) fn discard_reason(reason: Option<&str>) -> Result<String, ApiError> {
    match reason.map(str::trim) {
        Some(r) if !r.is_empty() => Ok(r.to_owned()),
        _ => Err(ApiError::bad_request("reason: a discard must say why")),
    }
}
