#!/usr/bin/env bash
# Benchmark of chain distribution: `dfs distribute` of one file (S bytes,
# chunk size c) from one holder to k = 1, 2, 4, 8 new nodes, every node's
# sending capped at B by TEST_ONLY_LIMIT_P2P_BANDWIDTH. Prints, for each k,
# the measured time (the job's start to its last node done, from the naming
# server) beside the chain's ideal S/B + (k-1)c/B and the k*S/B it would
# take to send the file to the nodes one after another.
#
#   bench/chain.sh [SIZE_MIB] [CHUNK_MIB] [MBIT]      (defaults: 64 4 100)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-64}
CHUNK_MIB=${2:-4}
MBIT=${3:-100}
KS=${KS:-"1 2 4 8"}
REDIS_PORT=${REDIS_PORT:-6392}
NAMING=127.0.0.1:8100
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dfs-chain-bench.XXXXXX")

cargo build --release --locked --bins >/dev/null
BIN=$PWD/target/release
export DFS_NAMING_URL=http://$NAMING

pids=()
stop_all() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/input"

start_storage() { # index
    mkdir -p "$WORK/run/node$1"
    LISTEN_ADDR="127.0.0.1:$((5100 + $1))" TCP_PORT=$((51100 + $1)) NAMING_URL=$DFS_NAMING_URL \
        DATA_DIR="$WORK/run/node$1" TEST_ONLY_LIMIT_P2P_BANDWIDTH="${MBIT}m" RUST_LOG=warn \
        "$BIN/storage-server" >>"$WORK/run/storage.log" 2>&1 &
    pids+=($!)
}

wait_live() { # count
    for _ in $(seq 1 300); do
        [ "$("$BIN/dfs" nodes 2>/dev/null | grep -cw alive || true)" -ge "$1" ] && return
        sleep 0.1
    done
    echo "error: $1 storage nodes never came up" >&2
    exit 1
}

run_k() { # k
    local k=$1
    rm -rf "$WORK/run" && mkdir -p "$WORK/run/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --dir "$WORK/run/redis" \
        >"$WORK/run/redis.log" 2>&1 &
    pids+=($!)
    until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
    LISTEN_ADDR=$NAMING REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" RUST_LOG=warn \
        "$BIN/naming-server" >"$WORK/run/naming.log" 2>&1 &
    pids+=($!)
    start_storage 0
    wait_live 1
    "$BIN/dfs" create "$WORK/input" bench/file --replication 1 --chunk-size "${CHUNK_MIB}MiB" >/dev/null
    for i in $(seq 1 "$k"); do start_storage "$i"; done
    wait_live $((k + 1))
    local job
    job=$("$BIN/dfs" distribute bench/file --no-wait)
    local state=running
    while [ "$state" = running ]; do
        sleep 0.05
        state=$(curl -sf "$DFS_NAMING_URL/distributions/$job" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])')
    done
    if [ "$state" != done ]; then
        echo "error: job $state: $(curl -s "$DFS_NAMING_URL/distributions/$job")" >&2
        exit 1
    fi
    curl -sf "$DFS_NAMING_URL/distributions/$job" | python3 -c '
import json, sys
job = json.load(sys.stdin)
k, size_mib, chunk_mib, mbit = (int(a) for a in sys.argv[1:])
secs = (job["finished_at_ms"] - job["created_at_ms"]) / 1000
bps = mbit * 1e6 / 8
s, c = size_mib * 2**20, chunk_mib * 2**20
chain = s / bps + (k - 1) * c / bps
print(f"k={k:<2} measured {secs:6.2f} s   chain ideal S/B+(k-1)c/B {chain:6.2f} s"
      f" (measured/ideal {secs / chain:4.2f})   one after another k*S/B {k * s / bps:6.2f} s")
' "$k" "$SIZE_MIB" "$CHUNK_MIB" "$MBIT"
    stop_all
}

echo "==> S = ${SIZE_MIB} MiB, c = ${CHUNK_MIB} MiB, B = ${MBIT} Mbit/s per sending node"
for k in $KS; do run_k "$k"; done
