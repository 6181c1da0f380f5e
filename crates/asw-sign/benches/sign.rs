//! Signing and verification rates on an e-Form D in compact XML (`ASW_BENCH_ITEMS`, default 10:
//! 7 KB; 5 items is 5 KB), per thread, with raw OpenSSL
//! signatures in the same run as the baseline. Not a timed test: `cargo bench -p asw-sign`
//! prints the figures. `ASW_BENCH_SECONDS` sets the time per measurement (default 1),
//! `ASW_BENCH_ONLY` runs only the measurements whose name contains it (for profiling).
//!
//! Each one-thread line also gives the rate per second of CPU time the thread actually got
//! (from `/proc/thread-self/schedstat`): on a shared machine, where other work takes turns on
//! the cores, it is the figure to compare between runs; the wall-clock rate is what a thread
//! gets from a core of its own only on an idle machine.

#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use asw_model::sample::{self, SampleSpec};
use asw_model::xml::{self, Limits};
use asw_model::{DocumentKind, MemberState};
use asw_sign::keygen::{self, KeyAlgorithm};
use asw_sign::{Signer, TrustStore, Verifier};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use time::OffsetDateTime;

fn seconds() -> Duration {
    let secs = std::env::var("ASW_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

fn selected(name: &str) -> bool {
    std::env::var("ASW_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

thread_local! {
    /// Operations per second of this thread's CPU time in its last `rate` measurement.
    static CPU_RATE: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Nanoseconds this thread has run on a CPU (Linux), if the kernel tells.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs `op` for a warm-up then for `seconds()`, returning operations per second (wall clock);
/// the rate per second of this thread's CPU time is left in `CPU_RATE`.
fn rate(mut op: impl FnMut()) -> f64 {
    let warm_up = Instant::now();
    while warm_up.elapsed() < Duration::from_millis(200) {
        op();
    }
    let budget = seconds();
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let mut count = 0u64;
    loop {
        for _ in 0..20 {
            op();
        }
        count += 20;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            let cpu = thread_cpu_ns()
                .zip(cpu_start)
                .map(|(end, start)| end.saturating_sub(start))
                .filter(|&ns| ns > 0)
                .map(|ns| count as f64 / (ns as f64 / 1e9));
            CPU_RATE.with(|c| c.set(cpu));
            return count as f64 / elapsed.as_secs_f64();
        }
    }
}

/// The same measurement on two threads at once (each with its own state), total per second.
fn rate_two_threads<S>(make: impl Fn() -> S + Sync, op: impl Fn(&S) + Sync) -> f64 {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let state = make();
                    rate(|| op(&state))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Measures and prints one line: the rate on one thread and, if given, on two threads.
fn report(name: &str, one: impl FnOnce() -> f64, two: Option<&dyn Fn() -> f64>) {
    if !selected(name) {
        return;
    }
    CPU_RATE.with(|c| c.set(None));
    let one = one();
    let cpu = CPU_RATE
        .with(Cell::get)
        .map_or_else(String::new, |cpu| format!(" ({cpu:>6.0}/CPU-s)"));
    match two.map(|two| two()) {
        Some(two) => {
            println!("{name:<50} {one:>7.0}/s per thread{cpu} {two:>7.0}/s on 2 threads")
        }
        None => println!("{name:<50} {one:>7.0}/s per thread{cpu}"),
    }
}

fn main() {
    let vn = MemberState::from_alpha2("VN").unwrap();
    let th = MemberState::from_alpha2("TH").unwrap();
    let items = std::env::var("ASW_BENCH_ITEMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let document = sample::message(&SampleSpec {
        kind: DocumentKind::FormD,
        from: vn,
        to: th,
        items,
        seed: 1,
        created_at: SampleSpec::seeded_time(1),
    })
    .to_xml_compact()
    .unwrap()
    .into_bytes();
    let now = OffsetDateTime::now_utc();
    println!(
        "asw-sign benchmark: e-Form D with {items} items, {} bytes unsigned; {:?} per measurement",
        document.len(),
        seconds()
    );

    report(
        "bounded parse (asw_model::xml::parse)",
        || {
            rate(|| {
                black_box(xml::parse(black_box(&document), &Limits::default()).unwrap());
            })
        },
        None,
    );

    for (name, algorithm) in [
        ("RSA-2048", KeyAlgorithm::Rsa2048),
        ("ECDSA P-256", KeyAlgorithm::EcP256),
    ] {
        let key = keygen::generate(vn, algorithm, 365, now).unwrap();
        let signer = Signer::new(&key.key_pem, &key.cert_pem).unwrap();
        let signed = signer.sign(&document).unwrap();
        let trust = Arc::new(TrustStore::from_pem([(vn, key.cert_pem.as_slice())]).unwrap());
        let verifier = Verifier::new(Arc::clone(&trust)).unwrap();
        verifier.verify(&signed, now).unwrap();
        println!("{name}: signed document {} bytes", signed.len());

        report(
            &format!("XML-DSig {name} sign (parse, sign, serialise)"),
            || {
                rate(|| {
                    black_box(signer.sign(black_box(&document)).unwrap());
                })
            },
            Some(&|| {
                rate_two_threads(
                    || Signer::new(&key.key_pem, &key.cert_pem).unwrap(),
                    |s| {
                        black_box(s.sign(black_box(&document)).unwrap());
                    },
                )
            }),
        );
        report(
            &format!("XML-DSig {name} verify (parse, checks, verify)"),
            || {
                rate(|| {
                    black_box(verifier.verify(black_box(&signed), now).unwrap());
                })
            },
            Some(&|| {
                rate_two_threads(
                    || Verifier::new(Arc::clone(&trust)).unwrap(),
                    |v| {
                        black_box(v.verify(black_box(&signed), now).unwrap());
                    },
                )
            }),
        );

        // Baseline: the bare public-key operation on 32 bytes with the same key.
        let pkey = PKey::private_key_from_pem(&key.key_pem).unwrap();
        let data = [7u8; 32];
        report(
            &format!("baseline: openssl {name} sign, 32 bytes"),
            || {
                rate(|| {
                    let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &pkey).unwrap();
                    black_box(s.sign_oneshot_to_vec(black_box(&data)).unwrap());
                })
            },
            None,
        );
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &pkey).unwrap();
        let signature = s.sign_oneshot_to_vec(&data).unwrap();
        report(
            &format!("baseline: openssl {name} verify, 32 bytes"),
            || {
                rate(|| {
                    let mut v =
                        openssl::sign::Verifier::new(MessageDigest::sha256(), &pkey).unwrap();
                    black_box(v.verify_oneshot(black_box(&signature), &data).unwrap());
                })
            },
            None,
        );
    }
}
