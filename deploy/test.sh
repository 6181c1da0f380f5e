#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, starts the broker, then
# runs every test of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cargo test --workspace --locked "$@"
