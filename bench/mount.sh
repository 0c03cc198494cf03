#!/usr/bin/env bash
# bench-area: mount
# Reads through `dfs mount` on a node holding the file vs `cat` of its chunk files; dfs read beside it; random 4 KiB reads; the mount's RSS.
#
# Three nodes, replication 3 (every node holds every chunk); the mount runs
# with DFS_LOCAL_DATA_DIR set to one node's data directory. Rows:
# - sequential read of a MOUNT_SIZE_MIB (1024) file through the mount
#   (`cat` to /dev/null, the mount's page cache cold, the chunk files warm)
#   against `cat` of the same bytes from the chunk files: target >= 0.7x
#   the rate (<= 1/0.7 the time);
# - `dfs read` of the same file to a local file, on the same node, for
#   comparison (it also syncs what it writes);
# - 2000 random 4 KiB reads of a second, never read file through the mount
#   against the same reads of its chunk files: p50 and p99 latency;
# - peak RSS (VmHWM) of the mount process, against 64 MiB + its window of
#   3 chunks of 8 MiB.
# Needs /dev/fuse and fusermount3 (fuse3).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup mount
need_cmd fusermount3 fuse3 >&2

if quick; then SIZE_MIB=32 RANDOM_MIB=16 READS=200; else
    SIZE_MIB=${MOUNT_SIZE_MIB:-1024} RANDOM_MIB=256 READS=2000
fi

start_redis
start_naming
for i in 1 2 3; do start_storage "n$i"; done
wait_live 3
NODE_DIR=$STORAGE_DIR

random_file "$WORK/seq" "$SIZE_MIB"
random_file "$WORK/rand" "$RANDOM_MIB"
"$BIN/dfs" create "$WORK/seq" bench/seq --replication 3 >/dev/null
"$BIN/dfs" create "$WORK/rand" bench/rand --replication 3 >/dev/null

# chunk_files NAME: the node's chunk files of NAME, in order.
chunk_files() {
    local ids
    ids=$(chunk_ids "$1")
    find "$NODE_DIR/chunks" -type f ! -name '*.meta' | python3 -c '
import os, sys
ids = sys.argv[1].split()
paths = {os.path.basename(p): p for p in sys.stdin.read().split()}
print("\n".join(paths[i] for i in ids))' "$ids"
}
mapfile -t SEQ_CHUNKS < <(chunk_files bench/seq)
mapfile -t RAND_CHUNKS < <(chunk_files bench/rand)

MNT=$WORK/mnt
mkdir -p "$MNT"
start_bg env DFS_LOCAL_DATA_DIR="$NODE_DIR" "$BIN/dfs" mount "$MNT" 2>>"$WORK/mount.log"
MOUNT_PID=$LAST_PID
on_exit "fusermount3 -u -z '$MNT' 2>/dev/null || true"
wait_for "the mount" test -f "$MNT/bench/seq"

# Warm the chunk files (both sides read them from the page cache).
cat "${SEQ_CHUNKS[@]}" "${RAND_CHUNKS[@]}" >/dev/null

secs_of() {
    local t0
    t0=$(now)
    "$@"
    calc "$(now) - $t0"
}
read_mount() { MOUNT=$(secs_of bash -c "cat '$MNT/bench/seq' >/dev/null"); }
read_chunks() { CAT=$(secs_of bash -c 'cat "$@" >/dev/null' _ "${SEQ_CHUNKS[@]}"); }
log "sequential ${SIZE_MIB} MiB: mount vs cat of the chunk files"
if dfs_first; then read_mount; read_chunks; else read_chunks; read_mount; fi
row row="read through dfs mount, on a node holding it" dfs="$MOUNT" baseline="$CAT" unit=s \
    higher_is_better=false baseline_name="cat of the chunk files" size_mib="$SIZE_MIB" \
    max_ratio=1.43 plot=bars
row row="dfs mount peak RSS, sequential read" dfs="$(peak_rss_mib "$MOUNT_PID")" \
    baseline=$((64 + 3 * 8)) unit=MiB higher_is_better=false \
    baseline_name="budget (64 MiB + 3 chunks)" max_ratio=1

log "dfs read of the same file to a file, same node"
READ=$(secs_of env DFS_LOCAL_DATA_DIR="$NODE_DIR" "$BIN/dfs" read bench/seq "$WORK/copy")
rm -f "$WORK/copy"
row row="dfs read to a file, on a node holding it" dfs="$READ" baseline="$CAT" unit=s \
    higher_is_better=false baseline_name="cat of the chunk files" size_mib="$SIZE_MIB"

# random_reads FILE...: p50 and p99 (ms) of READS random 4 KiB preads over
# FILE... taken as one file, in order.
random_reads() {
    python3 - "$READS" "$@" <<'PY'
import os, random, sys, time
reads, paths = int(sys.argv[1]), sys.argv[2:]
fds = [os.open(p, os.O_RDONLY) for p in paths]
sizes = [os.fstat(fd).st_size for fd in fds]
total = sum(sizes)
rng = random.Random(42)
lat = []
for _ in range(reads):
    at = rng.randrange(0, total - 4096)
    t0 = time.perf_counter()
    left, pos = 4096, at
    while left:
        i, off = 0, pos
        while off >= sizes[i]:
            off -= sizes[i]
            i += 1
        n = len(os.pread(fds[i], min(left, sizes[i] - off), off))
        left -= n
        pos += n
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
print(f"{lat[len(lat) // 2]:.4f} {lat[int(len(lat) * 0.99)]:.4f}")
PY
}
log "$READS random 4 KiB reads: mount vs the chunk files"
if dfs_first; then
    read -r M50 M99 < <(random_reads "$MNT/bench/rand")
    read -r C50 C99 < <(random_reads "${RAND_CHUNKS[@]}")
else
    read -r C50 C99 < <(random_reads "${RAND_CHUNKS[@]}")
    read -r M50 M99 < <(random_reads "$MNT/bench/rand")
fi
row row="random 4 KiB read through dfs mount, p50" dfs="$M50" baseline="$C50" unit=ms \
    higher_is_better=false baseline_name="pread of the chunk files"
row row="random 4 KiB read through dfs mount, p99" dfs="$M99" baseline="$C99" unit=ms \
    higher_is_better=false baseline_name="pread of the chunk files"
