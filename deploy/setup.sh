#!/usr/bin/env bash
# Installs what building and running aswhub needs on a Debian machine and makes sure the local
# RabbitMQ broker is up. Idempotent: fast when everything is already there. Sourced or run.
set -euo pipefail

# Debian packages the build, the tests and the demo need.
ASWHUB_PACKAGES=(
  pkg-config clang libclang-dev libssl-dev
  libxml2-dev libxml2-utils
  libxmlsec1-dev libxmlsec1-openssl xmlsec1
  openssl rabbitmq-server postgresql
  python3 python3-pika
  # promtool, for the tests of the alerting rules in deploy/prometheus.
  prometheus
  # The console's browser tests (tests/e2e/browser.rs): headless Chromium, driven from Node.
  chromium nodejs
)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for p in "${ASWHUB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_rabbitmq() {
  if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
    echo "setup: starting RabbitMQ" >&2
    as_root rabbitmq-server -detached || true
  fi
  # await_startup can fail (rc 69) before the node has registered: retry for a while.
  local i
  for i in $(seq 1 60); do
    if as_root rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1; then
      break
    fi
    if [ "$i" = 60 ]; then
      echo "setup: RabbitMQ did not start" >&2
      return 1
    fi
    sleep 1
  done
  # The hub declares users and permissions through the management HTTP API.
  if ! as_root rabbitmq-plugins -q list -e rabbitmq_management 2>/dev/null | grep -q rabbitmq_management; then
    as_root rabbitmq-plugins -q enable rabbitmq_management >/dev/null
  fi
}

ensure_postgresql() {
  # The PostgreSQL journal backend's tests use the local server (trust auth on 127.0.0.1).
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "setup: starting PostgreSQL" >&2
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$version" ]; then
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    local i
    for i in $(seq 1 30); do
      pg_isready -q -h 127.0.0.1 -p 5432 && break
      sleep 1
    done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "setup: PostgreSQL did not start" >&2; return 1; }
}

install_packages
ensure_rabbitmq
ensure_postgresql
# TLS on both services, with a throwaway test PKI (deploy/tls.sh).
bash "$(dirname "${BASH_SOURCE[0]}")/tls.sh"

# Python zeep, the independent SOAP client the simulated IPPC ePhyto Hub is tested with
# (crates/asw-testbed/tests/ephyto_hub.rs), in a virtual environment of its own: target/zeep-venv
# (zeep 4 and its few dependencies, about 20 MB).
ensure_zeep() {
  local venv
  venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/zeep-venv"
  "$venv/bin/python" -c "import zeep" 2>/dev/null && return 0
  if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "setup: installing zeep in $venv" >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q "zeep==4.*"
}
ensure_zeep

# playwright-core (npm, pinned by tests/browser/package-lock.json) for the console's browser
# tests; it drives Debian's /usr/bin/chromium and downloads no browser of its own.
ensure_playwright() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
  [ -d "$dir/node_modules/playwright-core" ] && return 0
  if ! command -v npm >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  echo "setup: installing playwright-core in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}
ensure_playwright
