#!/usr/bin/env bash
# Turns TLS on for this machine's own services, with a throwaway test PKI made here (never
# committed): a test CA, a server certificate for localhost / 127.0.0.1, one client certificate
# per identity (the hub, and `partner-<CC>` for each ASW member state: RabbitMQ takes the user
# name of the EXTERNAL mechanism from the certificate's CN), and a second CA that signed nothing
# here (for the tests that must see a wrong CA refused).
#
# RabbitMQ: TLS listener on 5671 (127.0.0.1, and 127.0.0.2 for the tests of a wrong server
# name), management API over https on 15671, plugin rabbitmq_auth_mechanism_ssl, mechanisms PLAIN
# AMQPLAIN EXTERNAL; the plain listeners 5672 and 15672 stay for the demo. RabbitMQ restarts only
# when its configuration changed. PostgreSQL: ssl = on with the server certificate (a reload).
#
# Idempotent and fast when done. Called by deploy/setup.sh once the services run; as root.
#   ASWHUB_PKI   where the PKI lives (/var/lib/aswhub-pki)
set -euo pipefail

PKI=${ASWHUB_PKI:-/var/lib/aswhub-pki}
MEMBER_STATES=(BN KH ID LA MM MY PH SG TH VN)
RABBITMQ_CONF=/etc/rabbitmq/rabbitmq.conf
BEGIN="# aswhub-tls begin (managed by tls.sh of aswhub)"
END="# aswhub-tls end"

# A key and a certificate signed by CA directory $1: file stem $2, subject CN $3, extensions $4.
issue() {
  local ca=$1 stem=$2 cn=$3 ext=$4
  [ -s "$stem.pem" ] && [ -s "$stem.key" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$stem.key" -subj "/O=aswhub test/CN=$cn" \
    -out "$stem.csr" 2>/dev/null
  openssl x509 -req -in "$stem.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile <(printf '%s\n' "$ext") -out "$stem.pem" 2>/dev/null
  rm -f "$stem.csr"
  chmod 0600 "$stem.key"
}

make_ca() {
  local dir=$1 cn=$2
  mkdir -p "$dir"
  [ -s "$dir/ca.pem" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/O=aswhub test/CN=$cn" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  chmod 0600 "$dir/ca.key"
}

make_pki() (
  umask 077
  mkdir -p "$PKI/clients"
  chmod 0755 "$PKI"
  make_ca "$PKI" "aswhub test CA"
  make_ca "$PKI/other-ca" "aswhub unrelated test CA"
  issue "$PKI" "$PKI/server" localhost \
    "$(printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
      'extendedKeyUsage=serverAuth' 'keyUsage=critical,digitalSignature,keyEncipherment')"
  local client_ext
  client_ext=$(printf '%s\n' 'extendedKeyUsage=clientAuth' 'keyUsage=critical,digitalSignature,keyEncipherment')
  issue "$PKI" "$PKI/clients/aswhub" aswhub "$client_ext"
  local cc
  for cc in "${MEMBER_STATES[@]}"; do
    issue "$PKI" "$PKI/clients/partner-$cc" "partner-$cc" "$client_ext"
  done
  # A client certificate from the unrelated CA: the broker must refuse it.
  issue "$PKI/other-ca" "$PKI/other-ca/partner-TH" partner-TH "$client_ext"
  # Copies of the server key each service may read (PostgreSQL wants its own key file).
  install -d -m 0755 "$PKI/rabbitmq" "$PKI/postgresql"
  install -m 0644 "$PKI/ca.pem" "$PKI/rabbitmq/ca.pem"
  install -m 0644 "$PKI/server.pem" "$PKI/rabbitmq/server.pem"
  install -m 0600 "$PKI/server.key" "$PKI/rabbitmq/server.key"
  install -m 0644 "$PKI/ca.pem" "$PKI/postgresql/ca.pem"
  install -m 0644 "$PKI/server.pem" "$PKI/postgresql/server.pem"
  install -m 0600 "$PKI/server.key" "$PKI/postgresql/server.key"
  if id rabbitmq >/dev/null 2>&1; then chown rabbitmq: "$PKI/rabbitmq/server.key"; fi
  if id postgres >/dev/null 2>&1; then chown postgres: "$PKI/postgresql/server.key"; fi
  chmod 0644 "$PKI/ca.pem" "$PKI/server.pem" "$PKI/other-ca/ca.pem"
)

rabbitmq_block() {
  cat <<EOF
$BEGIN
listeners.ssl.1 = 127.0.0.1:5671
listeners.ssl.2 = 127.0.0.2:5671
ssl_options.cacertfile = $PKI/rabbitmq/ca.pem
ssl_options.certfile = $PKI/rabbitmq/server.pem
ssl_options.keyfile = $PKI/rabbitmq/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
ssl_cert_login_from = common_name
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
management.tcp.port = 15672
management.ssl.port = 15671
management.ssl.cacertfile = $PKI/rabbitmq/ca.pem
management.ssl.certfile = $PKI/rabbitmq/server.pem
management.ssl.keyfile = $PKI/rabbitmq/server.key
$END
EOF
}

await_rabbitmq() {
  local i
  for i in $(seq 1 60); do
    rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "tls: RabbitMQ did not start" >&2
  return 1
}

configure_rabbitmq() {
  local current="" wanted
  [ -f "$RABBITMQ_CONF" ] && current=$(cat "$RABBITMQ_CONF")
  wanted=$( (printf '%s\n' "$current" | sed "/^$BEGIN\$/,/^$END\$/d" | sed '/^$/d'; rabbitmq_block) )
  local changed=0
  if [ "$current" != "$wanted" ]; then
    printf '%s\n' "$wanted" >"$RABBITMQ_CONF"
    changed=1
  fi
  if ! grep -qs rabbitmq_auth_mechanism_ssl /etc/rabbitmq/enabled_plugins \
      && ! rabbitmq-plugins -q list -e rabbitmq_auth_mechanism_ssl 2>/dev/null \
      | grep -q rabbitmq_auth_mechanism_ssl; then
    rabbitmq-plugins -q enable rabbitmq_auth_mechanism_ssl >/dev/null
  fi
  # The listeners are read at boot: restart only when the configuration changed.
  if [ "$changed" = 1 ] || ! (exec 3<>/dev/tcp/127.0.0.1/5671) 2>/dev/null; then
    echo "tls: restarting RabbitMQ for its TLS configuration" >&2
    rabbitmqctl -q stop >/dev/null 2>&1 || true
    rabbitmq-server -detached >/dev/null 2>&1 || true
    await_rabbitmq
  fi
}

configure_postgresql() {
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || { echo "tls: no PostgreSQL cluster" >&2; return 1; }
  local file=/etc/postgresql/$version/main/conf.d/aswhub-tls.conf wanted
  wanted=$(printf '%s\n' "# deploy/tls.sh" "ssl = on" \
    "ssl_cert_file = '$PKI/postgresql/server.pem'" \
    "ssl_key_file = '$PKI/postgresql/server.key'" \
    "ssl_ca_file = '$PKI/postgresql/ca.pem'")
  if [ ! -f "$file" ] || [ "$(cat "$file")" != "$wanted" ]; then
    mkdir -p "$(dirname "$file")"
    printf '%s\n' "$wanted" >"$file"
    chmod 0644 "$file"
    echo "tls: reloading PostgreSQL for its TLS configuration" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
}

make_pki
configure_rabbitmq
configure_postgresql
