#!/usr/bin/env bash
# Brings up a local dfs cluster on loopback: redis-server (installed when
# missing), one naming-server and three storage-servers, all data under
# ./.dfs-local (override with DFS_LOCAL_DIR). Ctrl-C stops everything.
#
# Ports: naming 8000, storage HTTP 5001-5003, peer TCP 50051-50053, redis
# 6379 (override with REDIS_PORT when another redis already uses it).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${DFS_LOCAL_DIR:-$PWD/.dfs-local}
REDIS_PORT=${REDIS_PORT:-6379}
NODES=${NODES:-3}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
    echo "==> installing redis-server (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

echo "==> building release binaries"
cargo build --release --locked --bins
BIN=$PWD/target/release

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$REDIS_PORT" 8000 $(seq 5001 $((5000 + NODES))); do
    if port_busy "$port"; then
        echo "error: port $port on 127.0.0.1 is already in use (is another cluster running?)" >&2
        exit 1
    fi
done

mkdir -p "$ROOT/redis" "$ROOT/logs"
pids=()
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "==> stopping the cluster"
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$ROOT/redis" \
    --appendonly yes --save '' >"$ROOT/logs/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

LISTEN_ADDR=127.0.0.1:8000 REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
    "$BIN/naming-server" >"$ROOT/logs/naming-server.log" 2>&1 &
pids+=($!)

for i in $(seq 1 "$NODES"); do
    mkdir -p "$ROOT/node$i"
    LISTEN_ADDR="127.0.0.1:$((5000 + i))" TCP_PORT=$((50050 + i)) \
        NAMING_URL=http://127.0.0.1:8000 DATA_DIR="$ROOT/node$i" \
        "$BIN/storage-server" >"$ROOT/logs/storage-$i.log" 2>&1 &
    pids+=($!)
done

echo "==> waiting for $NODES live storage nodes"
for _ in $(seq 1 300); do
    live=$("$BIN/dfs" nodes 2>/dev/null | grep -cw alive || true)
    [ "$live" -ge "$NODES" ] && break
    sleep 0.2
done
"$BIN/dfs" nodes

cat <<MSG

dfs is up: naming server http://127.0.0.1:8000 (Swagger UI: http://127.0.0.1:8000/swagger-ui),
$NODES storage servers on ports 5001-$((5000 + NODES)); data and logs in $ROOT.

Try, in another terminal:
    export PATH=$BIN:\$PATH
    dfs create ./README.md docs/readme.md
    dfs ls
    dfs stat docs/readme.md
    dfs read docs/readme.md -
    dfs size docs/readme.md
    dfs nodes
    dfs delete docs/readme.md

Ctrl-C stops the cluster.
MSG
wait -n "${pids[@]}" || true
echo "a cluster process exited; see $ROOT/logs" >&2
