//! Benchmark of validation on one thread: the full `Validator::validate` (bounded reader, libxml2
//! parse, XSD, business rules) against, in the same run, its parts as baselines: the bounded
//! reader alone and a bare libxml2 parse. Run: `cargo bench -p asw-schema` (release build).
//! `ASW_BENCH_SECONDS` sets the time per measurement (default 2).

use std::time::{Duration, Instant};

use asw_model::sample::{self, SampleSpec};
use asw_model::xml::{self, Limits};
use asw_model::{DocumentKind, MemberState};
use asw_schema::Validator;

fn measure(name: &str, bytes: usize, seconds: f64, mut op: impl FnMut()) -> f64 {
    for _ in 0..200 {
        op();
    }
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            op();
        }
        n += 100;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = n as f64 / elapsed;
    println!(
        "{name:<44} {bytes:>7} B {:>9.1} us/doc {rate:>10.0} docs/s",
        1e6 / rate
    );
    rate
}

fn main() {
    let seconds = std::env::var("ASW_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let (vn, th) = (
        MemberState::from_alpha2("VN").expect("VN"),
        MemberState::from_alpha2("TH").expect("TH"),
    );
    let mut validator = Validator::new().expect("schemas");
    let parser = libxml::parser::Parser::default();
    println!("one thread; Form D from asw_model::sample; {seconds} s per figure");
    for (items, compact) in [(10u32, true), (10, false), (2, false), (200, true)] {
        let message = sample::message(&SampleSpec {
            kind: DocumentKind::FormD,
            from: vn,
            to: th,
            items,
            seed: 1,
            created_at: SampleSpec::seeded_time(1),
        });
        let text = if compact {
            message.to_xml_compact()
        } else {
            message.to_xml()
        }
        .expect("xml");
        let doc = text.as_bytes();
        assert!(validator.validate(doc).is_ok(), "the sample is valid");
        let label = format!(
            "{items} items, {}",
            if compact { "compact" } else { "indented" }
        );
        let reader = measure(
            &format!("{label}: bounded reader (baseline)"),
            doc.len(),
            seconds,
            || {
                std::hint::black_box(xml::parse(doc, &Limits::default()).is_ok());
            },
        );
        let libxml = measure(
            &format!("{label}: libxml2 parse (baseline)"),
            doc.len(),
            seconds,
            || {
                std::hint::black_box(parser.parse_string(doc).is_ok());
            },
        );
        let full = measure(
            &format!("{label}: validate (reader+XSD+rules)"),
            doc.len(),
            seconds,
            || {
                std::hint::black_box(validator.validate(doc).is_ok());
            },
        );
        println!(
            "{label}: validate costs {:.0} us, {:.2}x a bare libxml2 parse, {:.2}x reader + parse\n",
            1e6 / full,
            libxml / full,
            (1.0 / reader + 1.0 / libxml) / (1.0 / full)
        );
    }
}
