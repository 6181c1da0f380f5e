#!/usr/bin/env bash
# The aswhub benchmark (issue #6): release builds of the hub and the benchmark, then one run
# against the local broker printing every figure with its baseline and a final BENCH line.
# Arguments go to asw-bench (see `asw-bench --help`), e.g. --docs 10000 --rss-docs 100000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cargo build --release --locked -q -p aswhub -p asw-bench
exec target/release/asw-bench "$@"
