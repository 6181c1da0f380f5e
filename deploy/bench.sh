#!/usr/bin/env bash
# The aswhub benchmark (issue #6): release builds of the hub and the benchmark, then one run
# against the local broker printing every figure with its baseline and a final BENCH line.
# Arguments go to asw-bench (see `asw-bench --help`), e.g. --docs 10000 --rss-docs 100000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
# The Python packages of the ministry relay baseline, figure (9) (deploy/bench/ministry-relay.py),
# in a virtual environment of our own; without them that figure is skipped with a note.
RELAY_VENV=target/bench-venv
if ! "$RELAY_VENV/bin/python" -c "import pika, lxml, signxml" 2>/dev/null; then
  python3 -m venv "$RELAY_VENV" \
    && "$RELAY_VENV/bin/pip" install -q "pika==1.*" "lxml==6.*" "signxml==5.*" \
    || echo "bench: could not install the relay baseline's Python packages; figure (9) is skipped" >&2
fi
export ASWHUB_RELAY_PYTHON="$PWD/$RELAY_VENV/bin/python"
cargo build --release --locked -q -p aswhub -p asw-bench
exec target/release/asw-bench "$@"
