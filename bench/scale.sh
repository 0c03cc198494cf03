#!/usr/bin/env bash
# bench-area: scale
# A million files' metadata on a Redis Cluster (3 masters, 3 replicas) against the same on one Redis
# (one naming server each, release build, stand-in storage nodes that are never called):
#   - loading SCALE_FILES files through the API (`dfs-metaload load`: init,
#     allocate, finalize of one 4 KiB chunk each, 32 in flight): files/s;
#   - name look-ups of random files (`GET /files?name=`, 16 in flight):
#     p50 and p99 latency, req/s;
#   - listing them all, 1,000 a page: files/s;
#   - Redis memory per file (`used_memory` of the masters after the load,
#     less before, over the file count).
# Each row gives the cluster as "dfs" and one Redis as the baseline, so the
# ratio is what the cluster costs or gains. Prints result lines
# (bench/README.md); run alone or through bench/run.sh.
#
#   bench/scale.sh    (SCALE_FILES=1000000 by default, about 10 minutes a
#                      backend here; BENCH_QUICK=1: 5,000 files)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup scale

if quick; then
    FILES=5000 LOOKUPS=2000
else
    FILES=${SCALE_FILES:-1000000} LOOKUPS=${SCALE_LOOKUPS:-50000}
fi
PREFIX=scale/

# start_cluster: 6 redis-servers joined as 3 masters with a replica each;
# sets REDIS_URL (redis+cluster://…) and MASTER_PORTS once every master's
# replica is in sync.
start_cluster() {
    local ports=() port i
    while [ "${#ports[@]}" -lt 6 ]; do
        port=$(free_port)
        # The cluster bus listens on PORT + 10000.
        [ "$port" -le 55535 ] || continue
        ports+=("$port")
    done
    for i in "${!ports[@]}"; do
        mkdir -p "$WORK/cluster$i"
        start_bg redis-server --port "${ports[$i]}" --bind 127.0.0.1 --save '' \
            --appendonly no --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout 5000 --dir "$WORK/cluster$i" \
            --logfile "$WORK/cluster$i.log"
    done
    for port in "${ports[@]}"; do wait_for "redis-server :$port" redis-cli -p "$port" ping; done
    local addrs=()
    for port in "${ports[@]}"; do addrs+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >&2
    # shellcheck disable=SC2016 # expanded by eval, at each try
    wait_for "a healthy cluster" eval '[ "$(cluster_masters_in_sync "${ports[@]}" | wc -l)" = 3 ]'
    mapfile -t MASTER_PORTS < <(cluster_masters_in_sync "${ports[@]}")
    REDIS_URL="redis+cluster://$(
        IFS=,
        echo "${addrs[*]}"
    )"
}

# cluster_masters_in_sync PORT...: the ports of the masters whose replica
# is in sync, one a line (when the cluster says it is ok).
cluster_masters_in_sync() {
    local port
    for port in "$@"; do
        redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || continue
        redis-cli -p "$port" info replication | grep -q '^slave0:.*state=online' && echo "$port"
    done
}

# used_memory PORT...: the sum of the servers' used_memory, in bytes.
used_memory() {
    local port total=0
    for port in "$@"; do
        total=$((total + $(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2 + 0 }')))
    done
    echo "$total"
}

# measure NAME PORT...: loads, looks up and lists FILES files through the
# naming server at NAMING_URL, whose masters are PORTs; sets NAME_load,
# NAME_p50, NAME_p99, NAME_rate, NAME_list and NAME_bytes.
measure() {
    local name=$1 before after out
    shift
    before=$(used_memory "$@")
    "$BIN/dfs-metaload" nodes 3 >/dev/null
    log "$name: loading $FILES files"
    out=$("$BIN/dfs-metaload" load "$FILES" --prefix "$PREFIX")
    printf -v "${name}_load" '%s' "$(json_field "$out" files_per_s)"
    after=$(used_memory "$@")
    printf -v "${name}_bytes" '%s' "$(calc "($after - $before) / $FILES")"
    log "$name: $LOOKUPS look-ups"
    out=$("$BIN/dfs-metaload" lookups "$FILES" --prefix "$PREFIX" --requests "$LOOKUPS")
    printf -v "${name}_p50" '%s' "$(json_field "$out" p50_ms)"
    printf -v "${name}_p99" '%s' "$(json_field "$out" p99_ms)"
    printf -v "${name}_rate" '%s' "$(json_field "$out" req_per_s)"
    log "$name: listing"
    out=$("$BIN/dfs-metaload" list --prefix "$PREFIX")
    [ "$(json_field "$out" files)" = "$FILES" ] || {
        echo "error: $name lists $(json_field "$out" files) files, not $FILES" >&2
        return 1
    }
    printf -v "${name}_list" '%s' "$(json_field "$out" files_per_s)"
}

# json_field JSON KEY: one field of a JSON object.
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# The stand-in nodes never heartbeat: keep them alive for the whole run.
NAMING_SETTINGS=(HEARTBEAT_TIMEOUT=7d REPAIR_AFTER=off FREE_SPACE_RESERVE=0)

# One backend after the other (each holds a million files' metadata), the
# order alternating between runs as for every other area.
run_single() {
    start_redis
    start_naming "${NAMING_SETTINGS[@]}"
    measure single "$REDIS_PORT"
    stop_all
}
run_cluster() {
    start_cluster
    start_naming "${NAMING_SETTINGS[@]}"
    measure cluster "${MASTER_PORTS[@]}"
    stop_all
}
if dfs_first; then
    run_cluster
    run_single
else
    run_single
    run_cluster
fi

base=(baseline_name="one Redis" plot=bars files="$FILES")
row row="metadata load through the API, cluster" dfs="$cluster_load" baseline="$single_load" \
    unit=files/s higher_is_better=true "${base[@]}"
row row="name lookup p50, cluster" dfs="$cluster_p50" baseline="$single_p50" \
    unit=ms higher_is_better=false "${base[@]}"
row row="name lookup p99, cluster" dfs="$cluster_p99" baseline="$single_p99" \
    unit=ms higher_is_better=false "${base[@]}"
row row="name lookups, 16 in flight, cluster" dfs="$cluster_rate" baseline="$single_rate" \
    unit=req/s higher_is_better=true "${base[@]}"
row row="listing, 1,000 a page, cluster" dfs="$cluster_list" baseline="$single_list" \
    unit=files/s higher_is_better=true "${base[@]}"
row row="Redis memory per file, cluster masters" dfs="$cluster_bytes" baseline="$single_bytes" \
    unit=B higher_is_better=false "${base[@]}"
