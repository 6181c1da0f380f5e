#!/usr/bin/env bash
# The demo, from a fresh machine: installs what is missing, builds aswctl, then plays the
# exchanges between Viet Nam and Thailand over the ASW (e-Form D, ACDD, e-Phyto, each with its
# answers), and an e-Phyto each way between Viet Nam and Korea through a local IPPC ePhyto Hub
# simulator (Korea enabled in the demo's partners file; needs ../shared/ephyto-hub/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cargo build --release --locked -q -p aswctl
exec target/release/aswctl demo "$@"
