#!/usr/bin/env bash
# Benchmark of the core store: `dfs create` and `dfs read` of one file
# (1 GiB by default) on the local cluster (release build, 3 storage nodes,
# replication 3), with peak RSS of `dfs` and of each storage server.
# The baseline, measured in the same run on the same disk: `cp` of the file
# (the cost of writing one copy) and `cat` of it (reading it back).
#
#   bench/core.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dfs-bench.XXXXXX")
BIN=$PWD/target/release

cleanup() {
    [ -n "${CLUSTER_PID:-}" ] && kill "$CLUSTER_PID" 2>/dev/null && wait "$CLUSTER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

DFS_LOCAL_DIR="$WORK/cluster" REDIS_PORT=${REDIS_PORT:-6390} scripts/local-cluster.sh >"$WORK/cluster.log" 2>&1 &
CLUSTER_PID=$!
for _ in $(seq 1 3000); do
    grep -q "dfs is up" "$WORK/cluster.log" 2>/dev/null && break
    kill -0 "$CLUSTER_PID" 2>/dev/null || { cat "$WORK/cluster.log"; exit 1; }
    sleep 0.2
done

echo "==> making a ${SIZE_MIB} MiB file of random bytes"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/input"
sync

measure() { # label, command...
    local label=$1; shift
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null
    read -r secs rss_kb <"$WORK/time"
    printf '%-28s %8.2f s %10.1f MiB/s   peak RSS %7.1f MiB\n' "$label" "$secs" \
        "$(echo "$SIZE_MIB / $secs" | bc -l)" "$(echo "$rss_kb / 1024" | bc -l)"
}

echo "==> results (${SIZE_MIB} MiB, 3 storage nodes, replication 3)"
measure "baseline: cp (1 copy)" cp "$WORK/input" "$WORK/copy"
measure "baseline: cat" cat "$WORK/copy"
rm -f "$WORK/copy"
measure "dfs create" "$BIN/dfs" create "$WORK/input" bench/file
measure "dfs read" "$BIN/dfs" read bench/file "$WORK/output"
cmp "$WORK/input" "$WORK/output" && echo "round trip: byte-identical"
for pid in $(pgrep -f "$BIN/storage-server"); do
    awk -v pid="$pid" '/VmHWM/ { printf "storage-server %s peak RSS %.1f MiB\n", pid, $2 / 1024 }' "/proc/$pid/status"
done
