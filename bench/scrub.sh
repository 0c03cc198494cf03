#!/usr/bin/env bash
# bench-area: scrub
# The scrubber: how fast a storage node re-reads its chunks at the default
# SCRUB_BANDWIDTH (against that cap) and uncapped (against `cat` of the same
# chunk files), and what a pass costs a concurrent `dfs read` of the node's
# data (against the same read on an idle node). Cold page cache before every
# measurement (root only; warm otherwise). One storage node, one file of
# 1 GiB with replication 1.
# Prints result lines (bench/README.md); run alone or through bench/run.sh.
#
#   bench/scrub.sh      (SCRUB_SIZE_MIB=1024; BENCH_QUICK=1: 16 MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup scrub

if quick; then SIZE_MIB=16; else SIZE_MIB=${SCRUB_SIZE_MIB:-1024}; fi
DEFAULT_CAP_MBIT=400 # storage-server's SCRUB_BANDWIDTH default

cold() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

start_redis
start_naming REPLICATION_FACTOR=1
NODE_PID=""
# start_node [SCRUB_BANDWIDTH]: (re)starts the node on the same DATA_DIR; it
# scrubs at once, since its last scrub start is forgotten first.
start_node() {
    if [ -n "$NODE_PID" ]; then
        kill "$NODE_PID"
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -f "$WORK/node/scrub_started"
    start_storage node SCRUB_INTERVAL=1000d ${1:+SCRUB_BANDWIDTH=$1}
    NODE_PID=$STORAGE_PID
}
passes() { curl -fs "$STORAGE_URL/metrics" | awk '$1 == "dfs_scrub_passes_total" { print $2 }'; }

start_node
wait_live 1
log "storing a $SIZE_MIB MiB file (replication 1)"
random_file "$WORK/input" "$SIZE_MIB"
"$BIN/dfs" create "$WORK/input" bench/scrub >/dev/null
rm -f "$WORK/input"

read_file() { # sets SECS: a cold read of the file to /dev/null
    local t0
    t0=$(now)
    "$BIN/dfs" read bench/scrub - >/dev/null
    SECS=$(calc "$(now) - $t0")
}
scrub_pass() { # [SCRUB_BANDWIDTH]: sets SECS: a cold scrub pass from a fresh start
    cold
    local t0
    t0=$(now)
    start_node "${1:-}"
    until [ "$(passes)" = 1 ]; do sleep 0.02; done
    SECS=$(calc "$(now) - $t0")
}
cat_chunks() { # sets SECS: cold `cat` of the node's chunk files
    cold
    local t0
    t0=$(now)
    find "$WORK/node/chunks" -type f -not -name '*.meta' -exec cat {} + >/dev/null
    SECS=$(calc "$(now) - $t0")
}
mb_per_sec() { calc "$SIZE_MIB * 2**20 / 1e6 / $1"; }

log "scrub pass at the default cap"
scrub_pass
capped=$SECS
row row="scrub pass, default SCRUB_BANDWIDTH" dfs="$(mb_per_sec "$capped")" \
    baseline="$(calc "$DEFAULT_CAP_MBIT / 8")" unit=MB/s higher_is_better=true baseline_name=cap \
    max_ratio=1.0

log "uncapped scrub pass and cat of the same files"
if dfs_first; then
    scrub_pass 1000g
    uncapped=$SECS
    cat_chunks
else
    cat_chunks
    scrub_pass 1000g
    uncapped=$SECS
fi
row row="scrub pass, uncapped, cold" dfs="$(mb_per_sec "$uncapped")" baseline="$(mb_per_sec "$SECS")" \
    unit=MB/s higher_is_better=true baseline_name=cat plot=bars

log "dfs read, node idle and during a default pass"
cold # the node is idle: its one pass, uncapped, is over
read_file
idle=$SECS
cold
start_node
read_file
during=$SECS
[ "$(passes)" = 0 ] || log "warning: the pass ended before the read did"
row row="dfs read during a default scrub pass, cold" dfs="$during" baseline="$idle" unit=s \
    higher_is_better=false baseline_name="node idle"
