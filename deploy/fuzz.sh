#!/usr/bin/env bash
# Coverage-guided fuzzing of the code that reads untrusted input: runs each libFuzzer target of
# fuzz/ (bodies in crates/asw-fuzz) for SECONDS (default 60) and fails if any found a crash, a
# timeout or an out-of-memory input. Usage: bash deploy/fuzz.sh [SECONDS] [TARGET...]
#
# Why cargo-fuzz (libFuzzer) with `--sanitizer none`: it builds and runs with the one stable
# toolchain here (Rust 1.95). Without `--sanitizer none` cargo-fuzz passes `-Zsanitizer=address`,
# which stable rustc refuses; the coverage instrumentation itself (`-Cpasses=sancov-module` and
# `-Cllvm-args=-sanitizer-coverage-*`) is stable, so no RUSTC_BOOTSTRAP is needed. AddressSanitizer
# would add little: the only unsafe Rust is asw-sign's FFI, and the C libraries are Debian's
# uninstrumented builds either way. afl.rs was not needed.
#
# Seeds: fuzz/corpus/<target>/ (committed, small) plus, for the XML targets, the documents of
# schemas/samples/. New inputs the fuzzer finds go to fuzz/target/corpus/<target>/ (kept between
# runs, not committed). A crash, timeout or OOM input is written to fuzz/regressions/<target>/,
# which the replay test of crates/asw-fuzz (in `cargo test --workspace`) runs: it fails until
# the bug is fixed; then commit the file with the fix, and it stays a regression test.
# Reproduce one with `cargo fuzz run --sanitizer none <target> <file>` in this repository.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=(reader validator verifier envelope config metrics)
XML_TARGETS=" reader validator verifier envelope "
if [ "$#" -gt 0 ]; then TARGETS=("$@"); fi
# Per-input timeout, in seconds. Ordinary inputs take well under a millisecond; libxml2 2.9.14
# needed about 2 s for one element with 20,000 attributes (190 KB) before the reader limited
# attributes, which this caught (fuzz/regressions/validator/timeout-libxml2-20000-attributes.xml).
TIMEOUT=1
# Largest input tried: enough for the superlinear cases above, small enough to keep the rate up.
MAX_LEN=262144
CARGO_FUZZ_VERSION=0.13.2

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# What building the targets needs: the workspace's build packages and a C++ compiler (libFuzzer).
PACKAGES=(pkg-config clang libclang-dev libssl-dev libxml2-dev libxmlsec1-dev libxmlsec1-openssl g++)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# Release build with coverage instrumentation and debug assertions, in fuzz/target (its own
# target folder: the flags differ from the workspace's). The versions are the workspace's: its
# lock file is copied in, and cargo adds only libFuzzer's crates to it.
cp Cargo.lock fuzz/Cargo.lock
cargo fuzz build --sanitizer none --debug-assertions

failed=()
for t in "${TARGETS[@]}"; do
  work="fuzz/target/corpus/$t"
  regressions="fuzz/regressions/$t"
  mkdir -p "$work" "$regressions"
  seeds=("fuzz/corpus/$t")
  if [[ "$XML_TARGETS" == *" $t "* ]]; then
    seeds+=(schemas/samples/valid schemas/samples/invalid)
  fi
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s" >&2
  # The first folder receives the new inputs; the seed folders are only read.
  if ! cargo fuzz run --sanitizer none --debug-assertions "$t" "$work" "${seeds[@]}" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout="$TIMEOUT" -max_len="$MAX_LEN" \
      -rss_limit_mb=2048 -artifact_prefix="$regressions/" -print_final_stats=1 \
      2> "fuzz/target/$t.log"; then
    failed+=("$t")
    tail -n 60 "fuzz/target/$t.log" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done )' "fuzz/target/$t.log" \
    | sed "s/^/fuzz: $t: /" >&2 || true
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}; the inputs are in fuzz/regressions/<target>/:" >&2
  git status --short --untracked-files=all fuzz/regressions >&2 || true
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} target(s), ${SECONDS_PER_TARGET}s each, nothing found"
