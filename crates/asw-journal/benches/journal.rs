//! Journal throughput: records 10,000 outbound messages of 5 KB in a file journal and moves each
//! through `signed` (with 5 KB of signed bytes), `queued` and `sent`, then prints messages/s.
//!
//! `cargo bench -p asw-journal`; `cargo bench -p asw-journal -- 2000` for another count.
//! Runs once with `synchronous=FULL` (the default) and once with `NORMAL`.

use std::time::{Duration, Instant};

use asw_journal::{
    Direction, Filter, Journal, Recorded, SqliteJournal, SqliteOptions, State, Synchronous,
    Transition,
};
use asw_model::{DocumentKind, Header, MemberState};
use time::OffsetDateTime;
use uuid::Uuid;

const MESSAGE_SIZE: usize = 5 * 1024;

fn main() {
    let count = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(10_000);
    println!(
        "journal: {count} outbound messages of {MESSAGE_SIZE} bytes, record + 3 transitions each"
    );
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        let phases = run(count, synchronous);
        let seconds = phases.iter().sum::<Duration>().as_secs_f64();
        let per_op = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
        println!(
            "  synchronous={:<6} {:>6.2} s  {:>6.0} messages/s  {:>6.0} writes/s  \
             (us per call: record {:.0}, signed {:.0}, queued {:.0}, sent {:.0})",
            format!("{synchronous:?}").to_uppercase(),
            seconds,
            count as f64 / seconds,
            (count * 4) as f64 / seconds,
            per_op(phases[0]),
            per_op(phases[1]),
            per_op(phases[2]),
            per_op(phases[3]),
        );
    }
}

/// Runs the benchmark; returns the time spent in each of the four calls, summed over messages.
fn run(count: usize, synchronous: Synchronous) -> [Duration; 4] {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    let journal = SqliteJournal::open_with(dir.path().join("journal.db"), &options).expect("open");
    let sender = MemberState::from_alpha2("VN").expect("VN");
    let receiver = MemberState::from_alpha2("TH").expect("TH");
    let body = vec![b'x'; MESSAGE_SIZE];
    let signed = vec![b's'; MESSAGE_SIZE];
    let mut phases = [Duration::ZERO; 4];
    for _ in 0..count {
        let header = Header {
            message_id: Uuid::new_v4(),
            correlation_id: None,
            sender,
            receiver,
            kind: DocumentKind::FormD,
            version: "1.0".into(),
            created_at: OffsetDateTime::now_utc(),
        };
        let id = header.message_id;
        let start = Instant::now();
        let outcome = journal
            .record(
                Direction::Outbound,
                &header,
                &body,
                State::Received,
                OffsetDateTime::now_utc(),
            )
            .expect("record");
        assert_eq!(outcome, Recorded::New);
        phases[0] += start.elapsed();
        let start = Instant::now();
        let moved = journal
            .transition_signed(id, &signed, OffsetDateTime::now_utc())
            .expect("sign");
        assert!(matches!(moved, Transition::Moved { .. }));
        phases[1] += start.elapsed();
        for (phase, to) in [(2, State::Queued), (3, State::Sent)] {
            let start = Instant::now();
            let moved = journal
                .transition(Direction::Outbound, id, to, None, OffsetDateTime::now_utc())
                .expect("move");
            assert!(matches!(moved, Transition::Moved { .. }));
            phases[phase] += start.elapsed();
        }
    }
    let listed = journal
        .list(&Filter {
            state: Some(State::Sent),
            limit: u32::MAX,
            ..Filter::default()
        })
        .expect("list");
    assert_eq!(listed.len(), count);
    phases
}
