//! (12) The console's search over a journal of `--search-messages` messages (1,000,000 by
//! default), on both backends: each representative query of an operator asked through the
//! console's HTTP API (the hub's server code, routes, session check, journal query, JSON), timed
//! from request to the whole response, beside the 100 ms the console promises.
//!
//! The journal is filled in SQL ([`crate::fill`], [`Mix::console`]: a year of VN's hub with
//! every partner, both directions, receipts, parked messages with the hub's reasons); no broker.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use asw_console::users::{Role, Users};
use asw_console::{AuditLog, Console, Sessions};
use asw_journal::Journal;
use asw_testbed::PgSchema;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fill::{Backend, Mix};
use crate::{Args, Row, state};

/// What the console promises for a search.
const TARGET_MS: f64 = 100.0;
/// The benchmark's console login.
const USER: &str = "bench";
/// Its password.
const PASSWORD: &str = "bench password 1";
/// A page's size in the queries (the console's default).
const PER_PAGE: usize = 50;

/// Figure (12) for both backends.
pub(crate) fn search(args: &Args, dir: &Path, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let mix = Mix::console();
    let backends = [
        Backend::Sqlite(dir.join("search.db")),
        Backend::Postgres(PgSchema::new()),
    ];
    for backend in &backends {
        let result = measure(args, dir, &mix, backend, rows);
        backend.remove();
        result.with_context(|| format!("console search on {}", backend.name()))?;
    }
    Ok(())
}

/// Fills one backend and times each query on it.
fn measure(
    args: &Args,
    dir: &Path,
    mix: &Mix,
    backend: &Backend,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let count = args.search_messages;
    // Opened once to make the tables, then again over the filled ones.
    drop(asw_journal::open(backend.location())?);
    println!(
        "console search, {}: filling {count} messages...",
        backend.name()
    );
    let filling = Instant::now();
    backend.fill(mix, count)?;
    let filled_in = filling.elapsed();
    let journal: Arc<dyn Journal> = asw_journal::open(backend.location())?.into();
    let app = asw_console::routes(Arc::new(console(journal, dir)?));
    let cookie = login(&app).context("logging in")?;
    rows.push(Row {
        figure: format!("(12) console search, {}: journal", backend.name()),
        value: format!("{count} msgs"),
        note: format!(
            "{:.0} days of 2 directions x 9 partners x 5 kinds, 2 % parked or overdue; \
             filled in {:.0} s, {:.2} GB",
            mix.days,
            filled_in.as_secs_f64(),
            backend.bytes_on_disk()? as f64 / 1e9
        ),
    });
    // A message from the middle of the year, found as an operator would: by its time.
    let now = OffsetDateTime::now_utc();
    let middle = now - time::Duration::seconds_f64(mix.days * 86_400.0 / 2.0);
    let (_, found) = ask(
        &app,
        &cookie,
        &format!(
            "/api/messages?until={}&per_page=1",
            middle.format(&Rfc3339)?
        ),
    )?;
    let id = found
        .first()
        .and_then(|m| m["message_id"].as_str())
        .context("no message before the middle of the year")?
        .to_owned();
    let rfc = |t: OffsetDateTime| t.format(&Rfc3339);
    let late_page = (count / 10 / PER_PAGE).max(2);
    let queries = [
        ("by id", format!("/api/messages?id={id}")),
        ("newest first", "/api/messages".to_owned()),
        ("oldest first", "/api/messages?order=oldest".to_owned()),
        (
            "partner + kind",
            "/api/messages?partner=SG&kind=acdd".to_owned(),
        ),
        ("state=failed", "/api/messages?state=failed".to_owned()),
        ("parked (failed + rejected)", "/api/parked".to_owned()),
        (
            "reason code",
            "/api/messages?reason_code=SIG-EXPIRED".to_owned(),
        ),
        (
            "text in the reason",
            "/api/messages?q=certificate+expired".to_owned(),
        ),
        (
            "a week, partner + direction",
            format!(
                "/api/messages?since={}&until={}&partner=TH&direction=inbound",
                rfc(middle)?,
                rfc(middle + time::Duration::WEEK)?
            ),
        ),
        (
            "late page",
            format!("/api/messages?page={late_page}&per_page={PER_PAGE}"),
        ),
    ];
    for (name, path) in &queries {
        let mut took = Vec::with_capacity(args.search_runs);
        let mut items = 0;
        // One untimed run first: the database's cache as on a hub that serves searches.
        for run in 0..=args.search_runs {
            let started = Instant::now();
            let (_, found) = ask(&app, &cookie, path)?;
            let elapsed = started.elapsed();
            if run > 0 {
                took.push(elapsed);
            }
            items = found.len();
        }
        if items == 0 {
            bail!("{path} found nothing: the figure would time an empty answer");
        }
        let (p50, p99) = (percentile(&mut took, 0.50), percentile(&mut took, 0.99));
        println!("  {name}: p50 {p50:.1} ms, p99 {p99:.1} ms, {items} items");
        rows.push(Row {
            figure: format!("(12) console search, {}: {name}", backend.name()),
            value: format!("{p50:.1}/{p99:.1} ms"),
            note: format!(
                "p50/p99 of {}; {} {TARGET_MS:.0} ms; {items} items; {path}",
                args.search_runs,
                if p99 <= TARGET_MS { "within" } else { "MISSES" },
            ),
        });
    }
    Ok(())
}

/// The `q`-quantile of `took`, in milliseconds.
fn percentile(took: &mut [Duration], q: f64) -> f64 {
    took.sort();
    let at = ((took.len() as f64 * q).ceil() as usize).clamp(1, took.len().max(1)) - 1;
    took.get(at).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// A console over `journal` for VN, with one viewer account.
fn console(journal: Arc<dyn Journal>, dir: &Path) -> anyhow::Result<Console> {
    let users_file = dir.join("search-users");
    let mut users = Users::default();
    users.add(USER, Role::Viewer, PASSWORD)?;
    users.save(&users_file)?;
    let partners = ["BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH"]
        .into_iter()
        .map(state)
        .collect();
    Ok(Console::new(
        journal,
        state("VN"),
        partners,
        Box::new(Vec::new),
        Box::new(|| Arc::new(asw_sign::TrustSnapshot::default())),
        AuditLog::new(dir.join("search-audit.jsonl")),
        Sessions::new(&users_file, Duration::from_secs(3600), false),
    ))
}

/// Status, head and body of one request through the hub's HTTP server code.
fn exchange(app: &axum::Router, request: &str) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let response = asw_gateway::http::answer(request.as_bytes(), app.clone());
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP response")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.get(9..12).unwrap_or("").parse()?;
    Ok((status, head, response[split + 4..].to_vec()))
}

/// Logs in as the benchmark's viewer; the session cookie (`name=value`).
fn login(app: &axum::Router) -> anyhow::Result<String> {
    let body = format!("user={USER}&password={}", PASSWORD.replace(' ', "+"));
    let (status, head, _) = exchange(
        app,
        &format!(
            "POST /login HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )?;
    if status != 303 {
        bail!("the console refused the benchmark's login: {head}");
    }
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .context("the login set no cookie")
}

/// `GET path` as the logged-in viewer: the page's items, or an error unless it answered 200.
fn ask(
    app: &axum::Router,
    cookie: &str,
    path: &str,
) -> anyhow::Result<(u16, Vec<serde_json::Value>)> {
    let (status, head, body) = exchange(
        app,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        ),
    )
    .with_context(|| format!("GET {path} (the server code gives up after 10 s)"))?;
    if status != 200 {
        bail!("GET {path}: {head}\n{}", String::from_utf8_lossy(&body));
    }
    let page: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("GET {path}: the answer is not JSON"))?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    Ok((status, items))
}
