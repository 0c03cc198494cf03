#!/usr/bin/env bash
# bench-area: memory
# The storage server's memory under read load: its peak resident set
# (VmHWM) while 16 `dfs read`s of one 1 GiB file run at once, against the
# 128 MiB budget (issue 9, point 7). The peak is reset (clear_refs) after
# the file is stored, so only the reads count. Also reports the aggregate
# read rate of those 16 readers, for context.
# Prints result lines (bench/README.md); run alone or through bench/run.sh.
#
#   bench/memory.sh      (BENCH_QUICK=1: a 16 MiB file)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup memory

READERS=16
BUDGET_MIB=128
if quick; then SIZE_MIB=16; else SIZE_MIB=${MEMORY_SIZE_MIB:-1024}; fi

start_redis
start_naming REPLICATION_FACTOR=1
start_storage node
wait_live 1

log "storing a $SIZE_MIB MiB file"
random_file "$WORK/input" "$SIZE_MIB"
"$BIN/dfs" create "$WORK/input" bench/memory --replication 1 >/dev/null
rm -f "$WORK/input"

# Forget the peak of the upload (Linux 4.0+); without it the peak covers the
# node's whole life, which only overstates it.
echo 5 >"/proc/$STORAGE_PID/clear_refs" 2>/dev/null || log "cannot reset VmHWM; reporting the node's lifetime peak"

log "$READERS concurrent reads of it"
started=$(now)
readers=()
for i in $(seq 1 "$READERS"); do
    "$BIN/dfs" read bench/memory - >/dev/null 2>"$WORK/reader$i.err" &
    readers+=($!)
done
failed=0
for pid in "${readers[@]}"; do wait "$pid" || failed=1; done
secs=$(calc "$(now) - $started")
if [ "$failed" -ne 0 ]; then
    cat "$WORK"/reader*.err >&2
    exit 1
fi
peak=$(peak_rss_mib "$STORAGE_PID")

row row="storage-server peak RSS, 16 concurrent reads" dfs="$peak" baseline=$BUDGET_MIB \
    unit=MiB higher_is_better=false baseline_name="budget" max_ratio=1.0
row row="16 concurrent dfs reads, aggregate" dfs="$(calc "$READERS * $SIZE_MIB / $secs")" \
    baseline=null unit=MiB/s higher_is_better=true
