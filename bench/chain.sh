#!/usr/bin/env bash
# bench-area: chain
# Chain distribution at a capped link: `dfs distribute` of one file (S bytes,
# chunk size c) from one holder to k new nodes, each node sending at most B.
# Reports, for each k, the measured time (the job's start to its last node
# done, from the naming server) against the chain's bound S/B + (k−1)·c/B
# (issue 9, point 6: between 1.00 and 1.05 at k = 8 and k = 16), in two
# set-ups:
#   - tc: the link is shaped by the kernel. Every storage node runs in a
#     network namespace of its own, joined by a veth pair (MTU 9000) to a
#     bridge in a hub namespace where Redis, the naming server and the `dfs`
#     client run; each node's egress is shaped by htb at B (small packets
#     ahead of bulk data, so acknowledgements do not wait behind it). The
#     nodes run uncapped. Root only: skipped with a note otherwise. The namespaces use
#     198.18.0.0/24 (reserved for benchmarks, RFC 2544), have no route
#     anywhere else, and are deleted on exit, even on failure.
#   - throttle: every node on loopback with its own test-only cap,
#     TEST_ONLY_LIMIT_P2P_BANDWIDTH = B, as the end-to-end tests use it.
# The TCP/IP headers cost about 0.7 % of a 9000-byte frame on the shaped
# links; the node's throttle counts payload bytes only.
# Prints result lines (bench/README.md); run alone or through bench/run.sh.
#
#   bench/chain.sh
#   CHAIN_SIZE_MIB=64 CHAIN_CHUNK_MIB=4 CHAIN_MBIT=100 CHAIN_KS="1 2 4 8 16" \
#   CHAIN_MODES="tc throttle" bench/chain.sh        (the defaults)
#   BENCH_QUICK=1: 8 MiB in 1 MiB chunks at 200 Mbit/s, k = 8 and 16 only
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup chain

if quick; then
    SIZE_MIB=8 CHUNK_MIB=1 MBIT=200 KS="8 16"
else
    SIZE_MIB=${CHAIN_SIZE_MIB:-64} CHUNK_MIB=${CHAIN_CHUNK_MIB:-4} MBIT=${CHAIN_MBIT:-100}
    KS=${CHAIN_KS:-"1 2 4 8 16"}
fi
MODES=${CHAIN_MODES:-"tc throttle"}
# shellcheck disable=SC2086 # a list of numbers
MAX_K=$(printf '%s\n' $KS | sort -n | tail -1)
random_file "$WORK/input" "$SIZE_MIB"

# ---------------------------------------------------------------- shaped links

NS=dfsb$$           # prefix of this run's namespaces and interfaces
HUB=$NS-hub
NET=198.18.0        # the hub is .1, storage node i is .(10 + i)
NAMING_NS_URL=http://$NET.1:8000
NETNS_MADE=()

net_teardown() {
    local ns
    for ns in "${NETNS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    NETNS_MADE=()
}

# shape NS: caps the egress of NS's eth0 at MBIT with htb. Small packets
# (acknowledgements, requests, heartbeats: IP length under 1024) go ahead of
# bulk data, as a NIC's fair queueing would let them; both count against
# the one rate. (The kernels here lack fq_codel, so htb classes do it.)
shape() {
    local tc=(ip netns exec "$1" tc) opts=(burst 64k cburst 64k quantum 9100)
    "${tc[@]}" qdisc add dev eth0 root handle 1: htb default 10
    "${tc[@]}" class add dev eth0 parent 1: classid 1:1 htb rate "${MBIT}mbit" ceil "${MBIT}mbit" "${opts[@]}"
    "${tc[@]}" class add dev eth0 parent 1:1 classid 1:10 htb prio 1 \
        rate "$((MBIT * 1000 - 1000))kbit" ceil "${MBIT}mbit" "${opts[@]}"
    "${tc[@]}" class add dev eth0 parent 1:1 classid 1:20 htb prio 0 \
        rate 1mbit ceil "${MBIT}mbit" "${opts[@]}"
    "${tc[@]}" filter add dev eth0 parent 1: protocol ip prio 1 u32 \
        match u16 0x0000 0xfc00 at 2 flowid 1:20
}

# net_setup COUNT: the hub and COUNT storage-node namespaces, shaped at MBIT.
net_setup() {
    on_exit net_teardown
    ip netns add "$HUB"
    NETNS_MADE+=("$HUB")
    ip -n "$HUB" link set lo up
    ip -n "$HUB" link add br0 type bridge
    ip -n "$HUB" link set br0 mtu 9000 up
    ip -n "$HUB" addr add "$NET.1/24" dev br0
    local i ns
    for i in $(seq 0 $(($1 - 1))); do
        ns=$NS-n$i
        ip netns add "$ns"
        NETNS_MADE+=("$ns")
        ip -n "$ns" link set lo up
        ip link add "${NS}a$i" mtu 9000 type veth peer name "${NS}b$i" mtu 9000
        ip link set "${NS}a$i" netns "$ns"
        ip link set "${NS}b$i" netns "$HUB"
        ip -n "$ns" link set "${NS}a$i" name eth0
        ip -n "$ns" addr add "$NET.$((10 + i))/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$HUB" link set "${NS}b$i" master br0 up
        shape "$ns"
    done
    # The bridge takes the smallest MTU of its ports.
    ip -n "$HUB" link set br0 mtu 9000
}

hub() { ip netns exec "$HUB" env DFS_NAMING_URL="$NAMING_NS_URL" "$@"; }

# start_hub_tc: Redis and the naming server in the hub.
start_hub_tc() {
    local redis_port=6379
    mkdir -p "$WORK/redis"
    start_bg ip netns exec "$HUB" redis-server --port $redis_port --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$WORK/redis" --logfile "$WORK/redis.log"
    wait_for "redis-server" hub redis-cli -p $redis_port ping
    start_bg ip netns exec "$HUB" env LISTEN_ADDR="$NET.1:8000" \
        REDIS_URL="redis://127.0.0.1:$redis_port/0" RUST_LOG=warn \
        "$BIN/naming-server" >>"$WORK/naming.log" 2>&1
    wait_for "the naming server" hub curl -fs "$NAMING_NS_URL/health"
}

# start_node_tc I: storage node I, uncapped, in its namespace.
start_node_tc() {
    mkdir -p "$WORK/node$1"
    start_bg ip netns exec "$NS-n$1" env LISTEN_ADDR="$NET.$((10 + $1)):5001" TCP_PORT=50051 \
        NAMING_URL="$NAMING_NS_URL" DATA_DIR="$WORK/node$1" RUST_LOG=warn \
        "$BIN/storage-server" >>"$WORK/node$1.log" 2>&1
}

# ---------------------------------------------------------------- node throttle

start_hub_throttle() {
    start_redis
    start_naming RUST_LOG=warn
}

# start_node_throttle I: storage node I on loopback, capped by its throttle.
start_node_throttle() { start_storage "node$1" TEST_ONLY_LIMIT_P2P_BANDWIDTH="${MBIT}m"; }

# ---------------------------------------------------------------- one measurement

# wait_live_in COUNT: waits until COUNT storage nodes are alive, asking
# from where the client runs (run_k's `run`).
wait_live_in() {
    # shellcheck disable=SC2016 # expanded by eval, at each try
    wait_for "$1 live storage nodes" \
        eval '[ "$("${run[@]}" "$BIN/dfs" nodes 2>/dev/null | grep -cw alive)" -ge '"$1"' ]'
}

# run_k MODE K: stores the file on one node, starts K more, distributes it
# to them; prints one result line.
run_k() {
    local mode=$1 k=$2 run=() naming=${NAMING_URL:-}
    if [ "$mode" = tc ]; then run=(hub); fi
    rm -rf "$WORK"/node* "$WORK/redis"
    "start_hub_$mode"
    "start_node_$mode" 0
    wait_live_in 1
    "${run[@]}" "$BIN/dfs" create "$WORK/input" bench/file --replication 1 \
        --chunk-size "${CHUNK_MIB}MiB" >/dev/null
    # The other nodes, started now so that the file went to node 0 only.
    local i
    for i in $(seq 1 "$k"); do "start_node_$mode" "$i"; done
    wait_live_in $((k + 1))
    if [ "$mode" = tc ]; then naming=$NAMING_NS_URL; else naming=$NAMING_URL; fi
    local job
    job=$("${run[@]}" "$BIN/dfs" distribute bench/file --no-wait)
    local state=running reply
    while [ "$state" = running ]; do
        sleep 0.05
        reply=$("${run[@]}" curl -fsS -H "Authorization: Bearer $DFS_TOKEN" "$naming/distributions/$job")
        state=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["state"])' "$reply")
    done
    [ "$state" = "done" ] || { echo "error: job $state: $reply" >&2; return 1; }
    stop_all
    python3 - "$reply" "$mode" "$k" "$SIZE_MIB" "$CHUNK_MIB" "$MBIT" <<'PY'
import json, sys
job = json.loads(sys.argv[1])
mode = sys.argv[2]
k, size_mib, chunk_mib, mbit = (int(a) for a in sys.argv[3:])
secs = (job["finished_at_ms"] - job["created_at_ms"]) / 1000
b = mbit * 1e6 / 8
s, c = size_mib * 2**20, chunk_mib * 2**20
bound = s / b + (k - 1) * c / b
links = {"tc": "links shaped by tc", "throttle": "node throttle"}[mode]
row = {
    "row": f"chain k={k}, {links}",
    "dfs": round(secs, 3),
    "baseline": round(bound, 3),
    "unit": "s",
    "higher_is_better": False,
    "baseline_name": "S/B+(k-1)c/B",
    "plot": "chain",
    "series": mode,
    "k": k,
    "serial": round(k * s / b, 3),
    "size_mib": size_mib,
    "chunk_mib": chunk_mib,
    "mbit": mbit,
}
if k in (8, 16):
    row["min_ratio"], row["max_ratio"] = 1.0, 1.05
print(json.dumps(row), flush=True)
PY
}

log "S = $SIZE_MIB MiB, c = $CHUNK_MIB MiB, B = $MBIT Mbit/s per sending node; k in $KS; modes: $MODES"
for mode in $MODES; do
    if [ "$mode" = tc ]; then
        if [ "$(id -u)" -ne 0 ] || ! command -v tc >/dev/null; then
            log "skipping the tc-shaped rows: they need root and tc (iproute2)"
            row row="chain, links shaped by tc" dfs=null baseline=null unit=s \
                higher_is_better=false note="skipped: needs root"
            continue
        fi
        net_setup $((MAX_K + 1))
    fi
    for k in $KS; do
        log "$mode: k = $k"
        run_k "$mode" "$k"
    done
    if [ "$mode" = tc ]; then net_teardown; fi
done
