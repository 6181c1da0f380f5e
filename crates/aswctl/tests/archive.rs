//! `aswctl journal archive`: settled messages leave the journal for an archive holding their exact
//! bytes and history; what is in flight or waits for an operator stays; an archive is never
//! overwritten and a second run archives nothing twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use asw_e2e::{document, state, testbed};
use asw_gateway::config::HubConfig;
use asw_journal::{Direction, Filter, Journal, Reason, State};
use asw_model::DocumentKind;
use asw_route::names;
use serde_json::Value;
use uuid::Uuid;

fn aswctl(config: &Path, args: &[&str], output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aswctl"))
        .args(["journal", "archive"])
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("-o")
        .arg(output)
        .output()
        .expect("run aswctl journal archive")
}

/// Every message of the journal, by direction and id, with its state.
fn everything(journal: &dyn Journal) -> BTreeMap<(Direction, Uuid), State> {
    let filter = Filter {
        limit: u32::MAX,
        ..Filter::default()
    };
    journal
        .list(&filter)
        .expect("list")
        .into_iter()
        .map(|s| ((s.direction, s.header.message_id), s.state))
        .collect()
}

/// The files of a tar archive, by name.
fn files_of(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut tar = tar::Archive::new(std::fs::File::open(archive).expect("open the archive"));
    for entry in tar.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        files.insert(name, bytes);
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_messages_move_to_the_archive_and_the_rest_stays() {
    let (tb, _dir) = testbed(&["VN", "TH"]).await;
    let vn = state("VN");
    // Two e-Form Ds VN -> TH, each acknowledged by TH's receipt.
    let mut sent = Vec::new();
    for _ in 0..2 {
        let form_d = document(DocumentKind::FormD, "VN", "TH");
        let id = form_d.header.message_id;
        tb.send_document(&form_d).await.expect("send");
        tb.wait_for(vn, "acknowledged", Duration::from_secs(30), |m| {
            m.routing_key == "outcome.formd.TH"
                && m.header(names::HEADER_MESSAGE_ID) == Some(id.to_string().as_str())
                && m.header(names::HEADER_OUTCOME) == Some("acknowledged")
        })
        .await
        .expect("acknowledged");
        sent.push(id);
    }
    let config_file = tb.config_file(vn).expect("VN config").to_owned();
    tb.stop_and_clean().await;

    let config = HubConfig::load(&config_file).expect("config");
    let journal = asw_journal::open(&config.journal.path).expect("journal");
    // What an operator must still act on, and what is still in flight: an inbound document that
    // failed, and an e-Form D waiting for its receipt.
    let failed = document(DocumentKind::Acdd, "TH", "VN").header;
    journal
        .record(
            Direction::Inbound,
            &failed,
            b"<acdd/>",
            State::Received,
            now(),
        )
        .expect("record");
    journal
        .transition(
            Direction::Inbound,
            failed.message_id,
            State::Failed,
            Some(&Reason::new("JOURNAL", "x")),
            now(),
        )
        .expect("fail");
    let waiting = document(DocumentKind::FormD, "VN", "TH").header;
    journal
        .record(
            Direction::Outbound,
            &waiting,
            b"<formd/>",
            State::Received,
            now(),
        )
        .expect("record");
    journal
        .transition_signed(waiting.message_id, b"<formd signed/>", now())
        .expect("sign");
    journal
        .transition(
            Direction::Outbound,
            waiting.message_id,
            State::Queued,
            None,
            now(),
        )
        .expect("queue");
    let before = everything(journal.as_ref());
    let mut bytes_before = BTreeMap::new();
    for &(direction, id) in before.keys() {
        let record = journal.get(direction, id).expect("get").expect("there");
        bytes_before.insert((direction, id), record.bytes);
    }
    assert!(before.len() >= 6, "{before:?}");

    let out = tempfile::tempdir().expect("temp dir");
    let archive = out.path().join("2026.tar");
    let run = aswctl(&config_file, &["--before", "0s", "--batch", "2"], &archive);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Left in the journal: exactly what was not settled.
    let after = everything(journal.as_ref());
    let kept: Vec<_> = after.keys().copied().collect();
    assert_eq!(
        kept.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            (Direction::Inbound, failed.message_id),
            (Direction::Outbound, waiting.message_id)
        ]
        .into_iter()
        .collect(),
        "{after:?}"
    );

    // In the archive: every settled message with its exact bytes and history, in parts.
    let files = files_of(&archive);
    let index: Value = serde_json::from_slice(&files["index.json"]).expect("index");
    assert_eq!(index["country"], "VN");
    let mut archived = BTreeMap::new();
    for part in index["parts"].as_array().expect("parts") {
        let part: Value =
            serde_json::from_slice(&files[part.as_str().expect("name")]).expect("part");
        for m in part["messages"].as_array().expect("messages") {
            let direction: Direction = m["direction"]
                .as_str()
                .expect("direction")
                .parse()
                .expect("d");
            let id: Uuid = m["message_id"].as_str().expect("id").parse().expect("uuid");
            let file = &files[m["file"].as_str().expect("file")];
            assert_eq!(
                Some(file),
                bytes_before.get(&(direction, id)),
                "exact bytes of {id}"
            );
            let history = m["history"].as_array().expect("history");
            assert_eq!(history[0]["event"], "recorded", "{m}");
            assert_eq!(history.last().expect("rows")["to"], m["state"], "{m}");
            assert!(
                archived
                    .insert((direction, id), m["state"].clone())
                    .is_none(),
                "{id} twice"
            );
        }
    }
    assert_eq!(index["messages"], archived.len());
    assert_eq!(index["removed_from_journal"], archived.len());
    assert_eq!(archived.len() + kept.len(), before.len());
    for id in &sent {
        assert_eq!(archived[&(Direction::Outbound, *id)], "acknowledged");
    }
    assert!(files.keys().any(|f| f.starts_with("certificates/VN/")));
    assert!(
        index["parts"].as_array().expect("parts").len() >= 2,
        "batches of 2"
    );

    // An archive is never overwritten; a second run has nothing more to archive.
    let again = aswctl(&config_file, &["--before", "0s"], &archive);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("cannot create"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(files_of(&archive), files, "the first archive is untouched");
    let second = out.path().join("second.tar");
    let run = aswctl(&config_file, &["--before", "0s"], &second);
    assert!(run.status.success());
    let index: Value = serde_json::from_slice(&files_of(&second)["index.json"]).expect("index");
    assert_eq!(index["messages"], 0);
    assert_eq!(everything(journal.as_ref()).len(), 2);
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
