# shellcheck shell=bash
# Helpers for the benchmark area scripts (bench/*.sh with a `# bench-area:`
# line); source it after `cd` to the repository root. It runs nothing itself.
# The contract the area scripts keep is in bench/README.md.
#
# Settings an area script reads (bench/run.sh sets them):
#   BENCH_QUICK=1   tiny sizes and durations (a smoke pass of a few seconds)
#   BENCH_RUN=N     which repetition this is (1, 2, ...); odd runs measure
#                   dfs first, even runs the baseline first
#   BENCH_BIN=DIR   the release binaries (built when missing)
#   BENCH_WORK=DIR  where scratch directories go (default: $TMPDIR or /tmp)
# and, for the servers started here, DFS_TOKEN (a random one when unset:
# the realistic configuration has a cluster token).

. scripts/lib.sh

BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_RUN=${BENCH_RUN:-1}

# log MESSAGE...: progress for people, on stderr (stdout carries the rows).
log() { echo "[$AREA] $*" >&2; }

# quick: true in a smoke pass.
quick() { [ "$BENCH_QUICK" = 1 ]; }

# dfs_first: true when this run measures dfs before its baseline.
dfs_first() { [ $((BENCH_RUN % 2)) -eq 1 ]; }

# bench_setup AREA: the release binaries in BIN, a scratch directory in WORK,
# a cluster token in DFS_TOKEN, and a trap that stops every process started
# through start_bg and runs the on_exit hooks, even on failure.
bench_setup() {
    AREA=$1
    BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}
    if [ ! -x "$BIN/dfs" ] || [ ! -x "$BIN/storage-server" ] || [ ! -x "$BIN/naming-server" ] ||
        [ ! -x "$BIN/dfs-metaload" ]; then
        cargo build --release --locked --bins >&2
    fi
    mkdir -p "${BENCH_WORK:-${TMPDIR:-/tmp}}"
    WORK=$(mktemp -d "${BENCH_WORK:-${TMPDIR:-/tmp}}/dfs-bench-$AREA.XXXXXX")
    DFS_TOKEN=${DFS_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
    export DFS_TOKEN
    BG_PIDS=()
    EXIT_HOOKS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# on_exit COMMAND: run COMMAND (a string for eval) when the script ends.
on_exit() { EXIT_HOOKS+=("$1"); }

bench_cleanup() {
    local rc=$?
    trap - EXIT
    stop_all
    local hook
    for hook in "${EXIT_HOOKS[@]}"; do eval "$hook" || true; done
    if [ "$rc" -ne 0 ]; then
        # Show the ends of the server logs, which usually say why.
        local f
        for f in "$WORK"/*.log; do
            [ -s "$f" ] || continue
            echo "--- $f (last lines)" >&2
            tail -5 "$f" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}

# start_bg COMMAND...: starts COMMAND in the background (in this shell, so
# it can be stopped later); its pid is in LAST_PID.
start_bg() {
    "$@" &
    LAST_PID=$!
    BG_PIDS+=("$LAST_PID")
}

# stop_all: stops every process start_bg started, and waits for them.
stop_all() {
    [ "${#BG_PIDS[@]}" -gt 0 ] || return 0
    kill "${BG_PIDS[@]}" 2>/dev/null || true
    wait "${BG_PIDS[@]}" 2>/dev/null || true
    BG_PIDS=()
}

# free_port: prints a TCP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for DESCRIPTION COMMAND...: retries COMMAND every 50 ms for up to
# 60 s (quietly), then fails.
wait_for() {
    local what=$1
    shift
    local _
    for _ in $(seq 1 1200); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "error: timed out waiting for $what" >&2
    return 1
}

# start_redis: a redis-server on a free loopback port; sets REDIS_URL and
# REDIS_PORT.
start_redis() {
    local port
    port=$(free_port)
    mkdir -p "$WORK/redis"
    start_bg redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK/redis" --logfile "$WORK/redis.log"
    # shellcheck disable=SC2034 # for the area scripts
    REDIS_PORT=$port
    REDIS_URL=redis://127.0.0.1:$port/0
    wait_for "redis-server" redis-cli -p "$port" ping
}

# start_naming [VAR=VALUE...]: a naming server on a free loopback port (on
# REDIS_URL, with DFS_TOKEN); sets NAMING_URL and exports DFS_NAMING_URL.
start_naming() {
    local port
    port=$(free_port)
    start_bg env LISTEN_ADDR="127.0.0.1:$port" REDIS_URL="$REDIS_URL" RUST_LOG=warn "$@" \
        "$BIN/naming-server" >>"$WORK/naming.log" 2>&1
    NAMING_URL=http://127.0.0.1:$port
    export DFS_NAMING_URL=$NAMING_URL
    wait_for "the naming server" curl -fs "$NAMING_URL/health"
}

# start_storage NAME [VAR=VALUE...]: a storage server with its data in
# WORK/NAME, on free loopback ports; sets STORAGE_URL, STORAGE_PID and
# STORAGE_DIR.
start_storage() {
    local name=$1
    shift
    local port
    port=$(free_port)
    STORAGE_DIR=$WORK/$name
    mkdir -p "$STORAGE_DIR"
    start_bg env LISTEN_ADDR="127.0.0.1:$port" TCP_PORT=0 NAMING_URL="$NAMING_URL" \
        DATA_DIR="$STORAGE_DIR" RUST_LOG=warn "$@" \
        "$BIN/storage-server" >>"$WORK/$name.log" 2>&1
    # shellcheck disable=SC2034 # for the area scripts
    STORAGE_PID=$LAST_PID
    STORAGE_URL=http://127.0.0.1:$port
    wait_for "storage server $name" curl -fs "$STORAGE_URL/health"
}

# live_nodes: how many storage nodes the naming server counts alive.
live_nodes() { "$BIN/dfs" nodes 2>/dev/null | grep -cw alive || true; }

# wait_live COUNT: waits until COUNT storage nodes are alive.
wait_live() {
    local count=$1
    # shellcheck disable=SC2016 # expanded by eval, at each try
    wait_for "$count live storage nodes" eval '[ "$(live_nodes)" -ge '"$count"' ]'
}

# random_file PATH MIB: PATH filled with MIB MiB of random bytes.
random_file() { head -c "$(($2 << 20))" /dev/urandom >"$1"; }

# chunk_ids NAME: the chunk ids of file NAME, one a line, in order.
chunk_ids() {
    curl -fsS -H "Authorization: Bearer $DFS_TOKEN" -G "$NAMING_URL/files" \
        --data-urlencode "name=$1" | python3 -c '
import json, sys
for chunk in sorted(json.load(sys.stdin)["chunks"], key=lambda c: c["index"]):
    print(chunk["chunk_id"])'
}

# peak_rss_mib PID: the process's peak resident set (VmHWM) in MiB.
peak_rss_mib() { awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

# now: seconds since the epoch, with fractions.
now() { date +%s.%N; }

# calc EXPRESSION: evaluates a Python arithmetic expression and prints it.
calc() { python3 -c "print(round($1, 6))"; }

# row KEY=VALUE...: prints one result line (a JSON object) on stdout; each
# VALUE is taken as JSON when it parses (numbers, true, null), else as a
# string. Keys: see the contract in bench/README.md.
row() {
    python3 -c '
import json, sys
out = {}
for arg in sys.argv[1:]:
    key, _, value = arg.partition("=")
    try:
        out[key] = json.loads(value)
    except ValueError:
        out[key] = value
print(json.dumps(out), flush=True)' "$@"
}
