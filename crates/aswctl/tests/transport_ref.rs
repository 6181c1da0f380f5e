//! `aswctl messages show` and `trace` print a message's channel reference (the IPPC ePhyto Hub's
//! delivery number) where the journal holds one, in the table and in JSON, and nothing where not.

use std::path::Path;
use std::process::Command;

use asw_e2e::document;
use asw_journal::{Direction, Journal, SqliteJournal, State};
use asw_model::DocumentKind;
use serde_json::Value;
use time::OffsetDateTime;

const NUMBER: &str = "EPH-VN-2026-000042";

/// A configuration (the shipped example) whose journal is `journal`, with what it checks at load.
fn config(dir: &Path, journal: &Path) -> std::path::PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/aswhub.example.toml");
    let text = std::fs::read_to_string(example).expect("example configuration");
    let text = text.replace(
        "path = \"/var/lib/aswhub/journal.db\"",
        &format!("path = {:?}", journal.display().to_string()),
    );
    assert!(
        text.contains(&journal.display().to_string()),
        "journal path replaced"
    );
    std::fs::create_dir_all(dir.join("keys")).expect("keys");
    std::fs::create_dir_all(dir.join("trust")).expect("trust");
    std::fs::write(dir.join("keys/vn-key.pem"), "").expect("key");
    std::fs::write(dir.join("keys/vn-cert.pem"), "").expect("cert");
    let file = dir.join("hub.toml");
    std::fs::write(&file, text).expect("write the configuration");
    file
}

fn aswctl(config: &Path, args: &[&str]) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_aswctl"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("ASWHUB_PARTNER_TH_PASSWORD", "th-password")
        .env("ASWHUB_PARTNER_SG_PASSWORD", "sg-password")
        .output()
        .expect("run aswctl");
    assert!(
        run.status.success(),
        "aswctl {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).expect("UTF-8")
}

#[test]
fn show_and_trace_print_the_hub_delivery_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("journal.db");
    let journal = SqliteJournal::open(&path).expect("journal");
    let now = OffsetDateTime::now_utc();
    // Sent through the hub (its delivery number kept with the move to sent), and answered.
    let sent = document(DocumentKind::FormD, "VN", "TH").header;
    let id = sent.message_id;
    journal
        .record(Direction::Outbound, &sent, b"<fd/>", State::Received, now)
        .expect("record");
    journal
        .transition_signed(id, b"<fd signed/>", now)
        .expect("sign");
    journal
        .transition(Direction::Outbound, id, State::Queued, None, now)
        .expect("queue");
    journal
        .transition_with_ref(Direction::Outbound, id, State::Sent, None, NUMBER, now)
        .expect("sent through the hub");
    let mut answer = document(DocumentKind::FormDAck, "TH", "VN").header;
    answer.correlation_id = Some(id);
    journal
        .record(Direction::Inbound, &answer, b"<ack/>", State::Received, now)
        .expect("record the answer");
    drop(journal);
    let config = config(dir.path(), &path);
    let id = id.to_string();
    let answer_id = answer.message_id.to_string();

    let shown = aswctl(&config, &["messages", "show", &id]);
    let line = shown
        .lines()
        .find(|l| l.contains("hub delivery number"))
        .unwrap_or_else(|| panic!("no delivery number in\n{shown}"));
    assert!(line.trim_end().ends_with(NUMBER), "{line}");
    let unreferenced = aswctl(&config, &["messages", "show", &answer_id]);
    assert!(
        !unreferenced.contains("hub delivery number"),
        "{unreferenced}"
    );

    let json: Value = serde_json::from_str(&aswctl(
        &config,
        &["messages", "show", &id, "--format", "json"],
    ))
    .expect("JSON");
    assert_eq!(json[0]["transport_ref"], NUMBER, "{json:#}");
    let json: Value = serde_json::from_str(&aswctl(
        &config,
        &["messages", "show", &answer_id, "--format", "json"],
    ))
    .expect("JSON");
    assert!(json[0].get("transport_ref").is_none(), "{json:#}");

    let traced = aswctl(&config, &["messages", "trace", &answer_id]);
    assert!(traced.contains("HUB DELIVERY NUMBER"), "{traced}");
    let row = traced
        .lines()
        .find(|l| l.contains(&id) && !l.contains(&answer_id))
        .unwrap_or_else(|| panic!("no row of the original in\n{traced}"));
    assert!(row.contains(NUMBER), "{row}");
    let json: Value = serde_json::from_str(&aswctl(
        &config,
        &["messages", "trace", &id, "--format", "json"],
    ))
    .expect("JSON");
    let entries = json.as_array().expect("array");
    assert_eq!(entries.len(), 2, "{json:#}");
    for entry in entries {
        if entry["message_id"] == id.as_str() {
            assert_eq!(entry["transport_ref"], NUMBER, "{entry:#}");
        } else {
            assert!(entry.get("transport_ref").is_none(), "{entry:#}");
        }
    }
}
