#!/usr/bin/env bash
# The demo, from a fresh machine: installs what is missing, builds aswctl, then plays the
# exchange of a signed e-Form D and its acknowledgement between Viet Nam and Thailand.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cargo build --release --locked -q -p aswctl
exec target/release/aswctl demo "$@"
