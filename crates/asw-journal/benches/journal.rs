//! Journal throughput on both backends: records 10,000 outbound messages of 5 KB and moves each
//! through `signed` (with 5 KB of signed bytes), `queued` and `sent`, then prints messages/s.
//!
//! `cargo bench -p asw-journal`; `cargo bench -p asw-journal -- 2000` for another count.
//! SQLite runs on a file in a temporary directory, once with `synchronous=FULL` (the default) and
//! once with `NORMAL`, then `FULL` again with 16 threads sharing one handle, as the hub's journal
//! threads do (their writes share commits). PostgreSQL runs in a schema of its own (dropped afterwards) on the server of
//! the tests (`ASWHUB_TEST_POSTGRES`, by default `postgres://postgres@127.0.0.1:5432/test`), once
//! with `synchronous_commit=on` (the default) and once `off`, the counterparts of SQLite's two;
//! then once more with 4 threads sharing one handle, as the hub's workers do.

use std::time::{Duration, Instant};

use asw_journal::{
    Direction, Filter, Journal, PostgresJournal, PostgresOptions, Recorded, SqliteJournal,
    SqliteOptions, State, Synchronous, Transition,
};
use asw_model::{DocumentKind, Header, MemberState};
use postgres::{Client, NoTls};
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
    for (synchronous, threads) in [
        (Synchronous::Full, 1),
        (Synchronous::Normal, 1),
        (Synchronous::Full, 16),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SqliteOptions {
            synchronous,
            ..SqliteOptions::default()
        };
        let journal =
            SqliteJournal::open_with(dir.path().join("journal.db"), &options).expect("open");
        let label = format!(
            "sqlite synchronous={}",
            format!("{synchronous:?}").to_uppercase()
        );
        report(&label, count, threads, run(&journal, count, threads));
        println!(
            "  {:<32} {} commits for {} writes",
            "",
            journal.commits(),
            count * 4
        );
    }

    let server = std::env::var("ASWHUB_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    for (synchronous_commit, threads) in [("on", 1), ("off", 1), ("on", 4)] {
        let schema = Schema::create(&server);
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!(
            "{server}{separator}options=-csearch_path%3D{}%20-csynchronous_commit%3D{synchronous_commit}",
            schema.name
        );
        let journal = PostgresJournal::open_with(&url, &PostgresOptions::default())
            .expect("open the PostgreSQL journal");
        let label = format!("postgres synchronous_commit={synchronous_commit}");
        report(&label, count, threads, run(&journal, count, threads));
    }
}

/// Prints throughput (from the wall time) and the mean time of each call.
fn report(label: &str, count: usize, threads: usize, (wall, phases): (Duration, [Duration; 4])) {
    let seconds = wall.as_secs_f64();
    let per_op = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
    println!(
        "  {label:<32} {threads} thread{s} {seconds:>6.2} s  {:>6.0} messages/s  {:>6.0} writes/s  \
         (us per call: record {:.0}, signed {:.0}, queued {:.0}, sent {:.0})",
        count as f64 / seconds,
        (count * 4) as f64 / seconds,
        per_op(phases[0]),
        per_op(phases[1]),
        per_op(phases[2]),
        per_op(phases[3]),
        s = if threads == 1 { " " } else { "s" },
    );
}

/// Runs the workload on `threads` threads sharing `journal`; returns the wall time and the time
/// spent in each of the four calls, summed over messages and threads.
fn run(journal: &dyn Journal, count: usize, threads: usize) -> (Duration, [Duration; 4]) {
    let start = Instant::now();
    let phases = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let share = count / threads + usize::from(i < count % threads);
                scope.spawn(move || run_share(journal, share))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("no panic"))
            .fold([Duration::ZERO; 4], |mut sum, phases| {
                for (s, p) in sum.iter_mut().zip(phases) {
                    *s += p;
                }
                sum
            })
    });
    let wall = start.elapsed();
    let listed = journal
        .list(&Filter {
            state: Some(State::Sent),
            limit: u32::MAX,
            ..Filter::default()
        })
        .expect("list");
    assert_eq!(listed.len(), count);
    (wall, phases)
}

fn run_share(journal: &dyn Journal, count: usize) -> [Duration; 4] {
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
    phases
}

/// A schema of the benchmark's own, dropped when done.
struct Schema {
    server: String,
    name: String,
}

impl Schema {
    fn create(server: &str) -> Schema {
        let name = format!("aswb_{}", Uuid::new_v4().simple());
        admin(server)
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("create the benchmark schema");
        Schema {
            server: server.to_owned(),
            name,
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = admin(&self.server).batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
    }
}

fn admin(server: &str) -> Client {
    Client::connect(server, NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {server} ({e}); start it (deploy/setup.sh) or set \
             ASWHUB_TEST_POSTGRES"
        )
    })
}
