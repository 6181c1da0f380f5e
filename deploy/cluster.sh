#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, beside the default broker (which it leaves
# alone): RabbitMQ's own clustering, so quorum queues get three replicas and hubs can move to
# another node when theirs goes away.
#
#   deploy/cluster.sh start            start the three nodes (forming the cluster the first time)
#   deploy/cluster.sh stop             stop them (data kept: `start` brings the same cluster back)
#   deploy/cluster.sh status           each node's name and whether it runs; exit 1 if one does not
#   deploy/cluster.sh urls             the AMQP and management URLs, for `[broker] urls`
#   deploy/cluster.sh stop-node N      stop node N (1-3) only, e.g. to rehearse a failure
#   deploy/cluster.sh start-node N     start node N again; it rejoins the cluster
#   deploy/cluster.sh delete           stop the nodes and remove their data
#
# Settings (environment):
#   ASWHUB_CLUSTER_DIR   data, logs, configuration and Erlang cookie (/var/tmp/aswhub-cluster)
#   ASWHUB_CLUSTER_NAME  node name prefix: nodes are NAME-1@HOST .. NAME-3@HOST (rabbit)
#   ASWHUB_CLUSTER_PORT  AMQP port of node 1 (5681); node N listens on PORT+N-1 for AMQP,
#                        PORT+10000+N-1 for the management API, PORT+20000+N-1 for Erlang
#                        distribution; all on 127.0.0.1.
set -euo pipefail

DIR=${ASWHUB_CLUSTER_DIR:-/var/tmp/aswhub-cluster}
NAME=${ASWHUB_CLUSTER_NAME:-rabbit}
PORT=${ASWHUB_CLUSTER_PORT:-5681}
HOST=$(hostname -s)
NODES=(1 2 3)

# The Debian wrappers in /usr/sbin switch to the rabbitmq user when run as root, who could not
# write our directory: use the scripts they wrap.
BIN=/usr/lib/rabbitmq/bin
[ -x "$BIN/rabbitmq-server" ] || BIN=$(dirname "$(command -v rabbitmq-server)")

node_name() { echo "$NAME-$1@$HOST"; }
amqp_port() { echo $((PORT + $1 - 1)); }
management_port() { echo $((PORT + 10000 + $1 - 1)); }
dist_port() { echo $((PORT + 20000 + $1 - 1)); }
node_dir() { echo "$DIR/$NAME-$1"; }

# Runs a RabbitMQ script for node $1 with everything under its own directory and the cluster's
# cookie ($DIR/.erlang.cookie, found through HOME).
with_node() {
    local n=$1
    shift
    local d
    d=$(node_dir "$n")
    env HOME="$DIR" \
        RABBITMQ_NODENAME="$(node_name "$n")" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$(amqp_port "$n")" \
        RABBITMQ_DIST_PORT="$(dist_port "$n")" \
        RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
        RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$d/mnesia" \
        RABBITMQ_LOG_BASE="$d/log" \
        RABBITMQ_PID_FILE="$d/rabbitmq.pid" \
        "$@"
}

ctl() {
    local n=$1
    shift
    with_node "$n" timeout 120 "$BIN/rabbitmqctl" -n "$(node_name "$n")" "$@"
}

running() { ctl "$1" -q --timeout 10 status >/dev/null 2>&1; }

prepare() {
    local n
    mkdir -p "$DIR"
    if [ ! -s "$DIR/.erlang.cookie" ]; then
        # The cluster's own cookie: the nodes share it, nothing else knows it.
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$DIR/.erlang.cookie"
        chmod 400 "$DIR/.erlang.cookie"
    fi
    for n in "${NODES[@]}"; do
        local d
        d=$(node_dir "$n")
        mkdir -p "$d/mnesia" "$d/log"
        cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$(amqp_port "$n")
management.tcp.ip = 127.0.0.1
management.tcp.port = $(management_port "$n")
# A node that lost contact with the majority stops serving instead of going its own way.
cluster_partition_handling = pause_minority
EOF
        echo "[rabbitmq_management]." >"$d/enabled_plugins"
        : >"$d/rabbitmq-env.conf"
    done
}

# Waits until node $1 runs its application (await_startup fails for a while after a detached
# start, before the node has registered: retry).
await_node() {
    local n=$1 tries=0
    until ctl "$n" -q await_startup --timeout 60 >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ $((tries % 15)) -eq 0 ]; then
            # Seen once on a loaded machine: a node that had just joined never started its
            # application. Starting an application that runs already does nothing.
            ctl "$n" -q start_app >>"$DIR/cluster.log" 2>&1 || true
        fi
        if [ "$tries" -ge 60 ]; then
            echo "$(node_name "$n") did not start; its log:" >&2
            tail -n 30 "$(node_dir "$n")/log/$(node_name "$n").log" >&2 || true
            if [ -s "$DIR/cluster.log" ]; then
                echo "and the clustering steps:" >&2
                tail -n 20 "$DIR/cluster.log" >&2
            fi
            return 1
        fi
        sleep 1
    done
}

start_node() {
    local n=$1
    if running "$n"; then
        return 0
    fi
    with_node "$n" "$BIN/rabbitmq-server" -detached
}

start() {
    local n
    prepare
    # Clustered nodes wait for each other at boot: start them all, then wait for each.
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do await_node "$n"; done
    if [ ! -e "$DIR/clustered" ]; then
        for n in 2 3; do
            {
                ctl "$n" -q stop_app
                ctl "$n" -q reset
                ctl "$n" -q join_cluster "$(node_name 1)"
                ctl "$n" -q start_app
            } >>"$DIR/cluster.log" 2>&1
            await_node "$n"
        done
        touch "$DIR/clustered"
    fi
    status
}

stop_node() {
    local n=$1 pid_file
    pid_file="$(node_dir "$n")/rabbitmq.pid"
    if running "$n"; then
        ctl "$n" -q stop "$pid_file" >/dev/null 2>&1 || true
    fi
    if [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        # It did not answer: end its Erlang VM by its pid.
        kill -9 "$(cat "$pid_file")" || true
    fi
    rm -f "$pid_file"
}

stop() {
    local n
    # The last node to stop must be the first to start again (RabbitMQ waits for it): `start`
    # starts all three at once, so any order works.
    for n in 3 2 1; do stop_node "$n"; done
}

status() {
    local n all=0
    for n in "${NODES[@]}"; do
        if running "$n"; then
            echo "$(node_name "$n") running amqp://127.0.0.1:$(amqp_port "$n") http://127.0.0.1:$(management_port "$n")"
        else
            echo "$(node_name "$n") stopped"
            all=1
        fi
    done
    return $all
}

urls() {
    local n amqp="" management=""
    for n in "${NODES[@]}"; do
        amqp+="${amqp:+, }\"amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/VHOST\""
        management+="${management:+, }\"http://127.0.0.1:$(management_port "$n")\""
    done
    echo "urls = [$amqp]"
    echo "management_urls = [$management]"
}

node_arg() {
    case "${1:-}" in
    1 | 2 | 3) echo "$1" ;;
    *)
        echo "usage: $0 stop-node|start-node 1|2|3" >&2
        exit 2
        ;;
    esac
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
urls) urls ;;
stop-node) stop_node "$(node_arg "${2:-}")" ;;
start-node)
    node=$(node_arg "${2:-}")
    prepare
    start_node "$node"
    await_node "$node"
    ;;
delete)
    stop
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop|status|urls|stop-node N|start-node N|delete" >&2
    exit 2
    ;;
esac
