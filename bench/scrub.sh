#!/usr/bin/env bash
# Benchmark of the scrubber: how fast a storage node re-reads its chunks
# (capped at the default SCRUB_BANDWIDTH, and uncapped), and what a scrub
# pass costs a concurrent `dfs read` of the same node's data. Cold page
# cache before every measurement. One storage node, one file of SIZE_MIB
# (default 1024) with replication 1, release build.
#
#   bench/scrub.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dfs-scrub-bench.XXXXXX")
BIN=$PWD/target/release
REDIS_PORT=${REDIS_PORT:-6392}
NAMING=127.0.0.1:8391
NODE=127.0.0.1:5391
export DFS_NAMING_URL=http://$NAMING
pids=()
node_pid=""

cleanup() {
    local rc=$?
    [ "$rc" -eq 0 ] || { echo "failed; the storage node's log ends:"; tail -20 "$WORK/node.log"; } >&2
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$REDIS_PORT" "${NAMING##*:}" "${NODE##*:}" 50391; do
    if port_busy "$port"; then
        echo "error: port $port on 127.0.0.1 is already in use (another run still going?)" >&2
        exit 1
    fi
done

cargo build --release --locked --bins
cold() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' \
    >"$WORK/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
LISTEN_ADDR=$NAMING REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" REPLICATION_FACTOR=1 \
    "$BIN/naming-server" >"$WORK/naming.log" 2>&1 &
pids+=($!)

# start_node [SCRUB_BANDWIDTH]: (re)starts the node; it scrubs at once,
# since its last scrub start is forgotten first.
start_node() {
    [ -n "$node_pid" ] && { kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; }
    rm -f "$WORK/node/scrub_started"
    mkdir -p "$WORK/node"
    env LISTEN_ADDR=$NODE TCP_PORT=50391 NAMING_URL=http://$NAMING DATA_DIR="$WORK/node" \
        SCRUB_INTERVAL=1000d ${1:+SCRUB_BANDWIDTH=$1} \
        "$BIN/storage-server" >>"$WORK/node.log" 2>&1 &
    node_pid=$!
    until curl -fs "http://$NODE/health" >/dev/null 2>&1; do
        kill -0 "$node_pid" 2>/dev/null || { tail -20 "$WORK/node.log"; exit 1; }
        sleep 0.05
    done
}
passes() { curl -fs "http://$NODE/metrics" | awk '$1 == "dfs_scrub_passes_total" { print $2 }'; }
now() { date +%s.%N; }

start_node
until "$BIN/dfs" nodes 2>/dev/null | grep -qw alive; do sleep 0.1; done
echo "==> storing a ${SIZE_MIB} MiB file (replication 1)"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/input"
"$BIN/dfs" create "$WORK/input" bench/scrub >/dev/null
rm -f "$WORK/input"

# Each measurement sets SECS (the node is started in this shell, not in a
# command substitution's subshell, so it can be stopped again).
read_file() { # cold read of the file to /dev/null
    local t0
    t0=$(now)
    "$BIN/dfs" read bench/scrub - >/dev/null
    SECS=$(echo "$(now) - $t0" | bc -l)
}
scrub_pass() { # [SCRUB_BANDWIDTH]: cold scrub pass from a fresh start
    cold
    local t0
    t0=$(now)
    start_node "${1:-}"
    until [ "$(passes)" = 1 ]; do sleep 0.05; done
    SECS=$(echo "$(now) - $t0" | bc -l)
}

cold
read_file
base=$SECS
scrub_pass
capped=$SECS
scrub_pass 1000g
uncapped=$SECS
# A read while a capped pass runs (it takes many seconds; the read, one or two).
cold
start_node
read_file
during=$SECS
[ "$(passes)" = 0 ] || echo "warning: the pass ended before the read did"

printf '\n==> results (%s MiB on one node, cold cache)\n' "$SIZE_MIB"
printf '%-44s %7.2f s %8.1f MiB/s\n' "dfs read, node idle" "$base" "$(echo "$SIZE_MIB / $base" | bc -l)"
printf '%-44s %7.2f s %8.1f MiB/s\n' "scrub pass, SCRUB_BANDWIDTH default (400m)" "$capped" "$(echo "$SIZE_MIB / $capped" | bc -l)"
printf '%-44s %7.2f s %8.1f MiB/s\n' "scrub pass, uncapped" "$uncapped" "$(echo "$SIZE_MIB / $uncapped" | bc -l)"
printf '%-44s %7.2f s %8.1f MiB/s  (%.2fx the idle read time)\n' "dfs read during a default scrub pass" \
    "$during" "$(echo "$SIZE_MIB / $during" | bc -l)" "$(echo "$during / $base" | bc -l)"
