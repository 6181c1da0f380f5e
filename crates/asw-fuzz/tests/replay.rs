//! Replays every seed and regression input of every fuzz target (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`, and `schemas/samples/` for the XML targets) through the same
//! bodies the fuzzer runs, so that `cargo test` keeps every crash and timeout ever found fixed.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asw_fuzz::{TARGETS, XML_TARGETS};

/// The slowest an input may be: the fuzzer's per-input timeout (`deploy/fuzz.sh`), so that what
/// timed out there fails here. Seeds take about a millisecond even in this unoptimised build.
const MAX_PER_INPUT: Duration = Duration::from_secs(1);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files of `dir` (none if it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// The seed files of a target.
fn seeds(target: &str) -> Vec<PathBuf> {
    let root = root();
    let mut seeds = files(&root.join("fuzz/corpus").join(target));
    if XML_TARGETS.contains(&target) {
        seeds.extend(files(&root.join("schemas/samples/valid")));
        seeds.extend(files(&root.join("schemas/samples/invalid")));
    }
    seeds
}

/// Runs `target` on each file, failing on a panic or a slow input; returns how many were accepted.
fn replay(name: &str, target: asw_fuzz::Target, inputs: &[PathBuf]) -> usize {
    let mut accepted = 0;
    for path in inputs {
        let data = std::fs::read(path).unwrap();
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| target(&data));
        let took = started.elapsed();
        match result {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("{name} panicked on {}", path.display()),
        }
        assert!(
            took < MAX_PER_INPUT,
            "{name} took {took:?} on {}",
            path.display()
        );
    }
    accepted
}

#[test]
fn every_seed_and_regression_input_passes_its_target() {
    let root = root();
    let mut report = Vec::new();
    for &(name, target) in TARGETS {
        let seeds = seeds(name);
        assert!(seeds.len() >= 2, "{name}: only {} seeds", seeds.len());
        let accepted = replay(name, target, &seeds);
        // The seeds reach the end of the happy path, not only the first error.
        assert!(accepted > 0, "{name}: no seed is accepted");
        assert!(accepted < seeds.len(), "{name}: no seed is refused");
        let regressions = files(&root.join("fuzz/regressions").join(name));
        replay(name, target, &regressions);
        report.push(format!(
            "{name}: {} seeds ({accepted} accepted), {} regressions",
            seeds.len(),
            regressions.len()
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn the_fuzz_project_and_script_know_every_target() {
    let root = root();
    let script = std::fs::read_to_string(root.join("deploy/fuzz.sh")).unwrap();
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    for &(name, _) in TARGETS {
        let source = root.join(format!("fuzz/fuzz_targets/{name}.rs"));
        let text = std::fs::read_to_string(&source).unwrap();
        assert!(
            text.contains(&format!("asw_fuzz::{name}(data)")),
            "{} does not call asw_fuzz::{name}",
            source.display()
        );
        assert!(manifest.contains(&format!("name = \"{name}\"")));
    }
    // deploy/fuzz.sh runs every target and gives the XML ones the same seeds as `seeds` here.
    let names: Vec<&str> = TARGETS.iter().map(|&(name, _)| name).collect();
    for line in [
        format!("TARGETS=({})", names.join(" ")),
        format!("XML_TARGETS=\" {} \"", XML_TARGETS.join(" ")),
        "seeds+=(schemas/samples/valid schemas/samples/invalid)".to_owned(),
    ] {
        assert!(
            script.lines().any(|l| l.trim() == line),
            "deploy/fuzz.sh has no line {line:?}"
        );
    }
}
