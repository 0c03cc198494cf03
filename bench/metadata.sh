#!/usr/bin/env bash
# bench-area: metadata
# Naming-server look-ups against redis-benchmark GET, small creates against an fsync baseline
# (one naming server on one Redis, three storage nodes, the cluster token set):
#   - `GET /files/{id}/chunks/0` (a chunk location) and `GET /files?name=` (a
#     name look-up) at 16 connections with wrk, against `redis-benchmark -t
#     get -c 16` on the same Redis: req/s (target ≥ 0.3 ×);
#   - 100 sequential `dfs create` of 4 KiB files at replication 3, and one
#     `dfs create` of 100 such files (8 in flight), each against writing
#     each file 3 times the durable way (write + fsync + rename + directory
#     fsync): files/s (target ≥ 0.3 ×);
#   - the Redis round trips of a first and of a repeated name look-up
#     (`INFO stats` total_reads_processed around one request, the fewest of
#     3), against their budgets of 2 and 1.
# Prints result lines (bench/README.md); run alone or through bench/run.sh.
#
#   bench/metadata.sh    (BENCH_QUICK=1: 1 s per wrk run, 10 creates)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup metadata

CONNECTIONS=16
if quick; then
    SECONDS_EACH=1 GETS=20000 CREATES=10
else
    SECONDS_EACH=${METADATA_SECONDS:-10} GETS=${METADATA_GETS:-400000} CREATES=${METADATA_CREATES:-100}
fi

start_redis
start_naming
for i in 1 2 3; do start_storage "node$i"; done
wait_live 3

NAME=bench-metadata
head -c 4096 /dev/urandom >"$WORK/small"
"$BIN/dfs" create "$WORK/small" "$NAME" >/dev/null
FILE_ID=$(curl -fsS -H "Authorization: Bearer $DFS_TOKEN" -G "$NAMING_URL/files" \
    --data-urlencode "name=$NAME" | python3 -c 'import json, sys; print(json.load(sys.stdin)["file_id"])')
echo "/files/$FILE_ID/chunks/0" >"$WORK/location.paths"
echo "/files?name=$NAME" >"$WORK/lookup.paths"

auth=(-H "Authorization: Bearer $DFS_TOKEN")

# wrk_rate PATHS: req/s of one wrk run on the naming server.
wrk_rate() {
    local out
    out=$(wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_EACH}s" "${auth[@]}" \
        -s bench/wrk.lua "$NAMING_URL" -- "$1" | grep '^{')
    python3 -c '
import json, sys
s = json.loads(sys.argv[1])
if s["errors"] or s["status_errors"] or not s["requests"]:
    sys.exit(f"error: wrk on {sys.argv[2]}: {s}")
print(round(s["requests"] / (s["duration_us"] / 1e6), 1))' "$out" "$1"
}

# redis_rate: req/s of redis-benchmark GET at the same concurrency, same Redis.
redis_rate() {
    redis-benchmark -p "$REDIS_PORT" -t get -c "$CONNECTIONS" -n "$GETS" --csv |
        awk -F'"' '$2 == "GET" { print $4 }'
}

# lookup_pair ROW PATHS: one row, dfs and redis-benchmark in this run's order.
lookup_pair() {
    local dfs base
    log "$1: wrk ${SECONDS_EACH} s and redis-benchmark -n $GETS"
    if dfs_first; then
        dfs=$(wrk_rate "$2")
        base=$(redis_rate)
    else
        base=$(redis_rate)
        dfs=$(wrk_rate "$2")
    fi
    row row="$1" dfs="$dfs" baseline="$base" unit=req/s higher_is_better=true \
        baseline_name="redis-benchmark GET" min_ratio=0.3 plot=bars
}

lookup_pair "chunk location, 16 conn" "$WORK/location.paths"
lookup_pair "name lookup, 16 conn" "$WORK/lookup.paths"

# Small creates: CREATES sequential `dfs create` of 4 KiB, replication 3.
creates_per_sec() {
    local start end i
    start=$(now)
    for i in $(seq 1 "$CREATES"); do
        "$BIN/dfs" create "$WORK/small" "small/$BENCH_RUN-$i" --replication 3 >/dev/null
    done
    end=$(now)
    calc "$CREATES / ($end - $start)"
}

# Small creates in one `dfs create` of CREATES files (8 in flight).
batch_creates_per_sec() {
    local start end i dir=$WORK/batch-$BENCH_RUN
    mkdir -p "$dir"
    for i in $(seq 1 "$CREATES"); do cp "$WORK/small" "$dir/f$i"; done
    start=$(now)
    "$BIN/dfs" create "$dir"/f* "batch/$BENCH_RUN/" --replication 3 >/dev/null
    end=$(now)
    calc "$CREATES / ($end - $start)"
}

# The same number of files written 3 times each the way a storage node
# stores a chunk: temp file, write, fsync, rename, fsync the directory.
fsync_per_sec() {
    python3 - "$WORK/fsync" "$CREATES" <<'PY'
import os, sys, time
root, count = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096)
dirs = [os.path.join(root, f"copy{c}") for c in range(3)]
for d in dirs:
    os.makedirs(d, exist_ok=True)
start = time.monotonic()
for i in range(count):
    for d in dirs:
        tmp = os.path.join(d, f".tmp{i}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, os.path.join(d, f"file{i}"))
        dfd = os.open(d, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
print(round(count / (time.monotonic() - start), 3))
PY
}

# create_pair ROW FUNCTION: one row, FUNCTION's files/s against the fsync
# baseline, in this run's order.
create_pair() {
    local dfs base
    log "$1: $CREATES files, and as many 3× fsync'd writes"
    if dfs_first; then
        dfs=$($2)
        base=$(fsync_per_sec)
    else
        base=$(fsync_per_sec)
        dfs=$($2)
    fi
    row row="$1" dfs="$dfs" baseline="$base" unit=files/s higher_is_better=true \
        baseline_name="3× write+fsync+rename+dir fsync" min_ratio=0.3 plot=bars
}

create_pair "small create 4 KiB RF=3" creates_per_sec
create_pair "small creates 4 KiB RF=3, one dfs create" batch_creates_per_sec

# Round trips to Redis of one look-up: read events Redis counted between two
# `redis-cli info` calls, less two that are not the naming server's (the
# first redis-cli's disconnect, read after its INFO, and the second INFO);
# the fewest of 3 (the naming server's background loops and heartbeats can
# add one). A first look-up needs a name not
# looked up before and the node directory not cached (it lives at most 1 s).
reads() { redis-cli -p "$REDIS_PORT" info stats | awk -F: '/^total_reads_processed:/ { print $2 + 0 }'; }
# With nothing in between, the two INFO calls differ by exactly those two.
a=$(reads)
b=$(reads)
idle=$((b - a))
[ "$idle" -eq 2 ] || log "note: two INFO calls alone differ by $idle reads"
round_trips() {
    local before after
    before=$(reads)
    curl -fsS -o /dev/null "${auth[@]}" -G "$NAMING_URL/files" --data-urlencode "name=$1"
    after=$(reads)
    echo $((after - before - 2))
}
first=99
repeated=99
for i in 1 2 3; do
    "$BIN/dfs" create "$WORK/small" "trips/$BENCH_RUN-$i" >/dev/null
    sleep 1.1 # the node directory cache expires
    n=$(round_trips "trips/$BENCH_RUN-$i")
    [ "$n" -lt "$first" ] && first=$n
    n=$(round_trips "trips/$BENCH_RUN-$i")
    [ "$n" -lt "$repeated" ] && repeated=$n
done
row row="Redis round trips, first name lookup" dfs="$first" baseline=2 unit="round trips" \
    higher_is_better=false baseline_name=budget max_ratio=1
row row="Redis round trips, repeated name lookup" dfs="$repeated" baseline=1 unit="round trips" \
    higher_is_better=false baseline_name=budget max_ratio=1
