#!/usr/bin/env bash
# End-to-end test of the Docker stack: the repository's own Dockerfile and
# docker-compose.yml, built and run for real, driven the way the README says.
#
#  1. base images: local stand-ins for the tags the two files name when the
#     engine does not have them (base-images.sh; nothing is pulled)
#  2. crates: when a container of the build's rust image cannot fetch from
#     the crate registry with cargo, a `cargo vendor` directory made now
#     (gitignored, removed on exit) that the Dockerfile uses
#  3. build, `up -d`, wait for every service to be healthy and 3 nodes alive
#  4. `run --rm cli`: create/size/read/ls/stat/nodes of a 20 MiB file (3 chunks
#     of the default 8 MiB), bytes compared, files owned by the caller
#  4b. `up -d mount`: the FUSE mount service serves the same bytes; SIGTERM
#     ends it with status 0
#  5. `up -d --scale storage-server=5`: the 2 new nodes register and hold a
#     replica of every chunk of a file written with --replication 5
#  6. stop one storage container, then all 3 original ones: reads still work
#  6b. stop the first naming server: the CLI and the storage nodes move to
#     the second (a create and a read work; heartbeats reach it)
#  7. kill redis (no shutdown save) and start it again: metadata is back (AOF)
#  8. delete; then `down -v`, and nothing of the project is left behind
#
# Each compose call uses a unique project name; a trap takes everything down
# however the test ends. Env: DFS_COMPOSE (compose command, default
# docker-compose, e.g. "docker compose"), DFS_IMAGE (image tag, default
# dfs:compose-test so a user's dfs:local is left alone), KEEP_VENDOR=1 (keep a
# vendor/ directory this test made).
set -euo pipefail

cd "$(dirname "$0")/../.."
readonly ROOT=$PWD
readonly STARTED=$SECONDS
read -r -a COMPOSE <<<"${DFS_COMPOSE:-docker-compose}"
readonly PROJECT="dfstest$$x$RANDOM"
export DFS_IMAGE=${DFS_IMAGE:-dfs:compose-test}
# Publish the naming server on an ephemeral loopback port ("127.0.0.1::8000").
export DFS_NAMING_PORT=127.0.0.1:
export DFS_NAMING_PORT_2=127.0.0.1:
unset DFS_TOKEN # the stack runs without a token, whatever the caller's shell has

WORK=$(mktemp -d /tmp/dfs-compose-test.XXXXXX)
MADE_VENDOR=0
PASSED=0
timings=()

log() { printf '==> %s\n' "$*" >&2; }
fail() {
    printf 'compose-test: FAILED: %s\n' "$*" >&2
    exit 1
}

# phase NAME CMD...: runs CMD and records how long it took.
phase() {
    local name=$1 start=$SECONDS
    shift
    log "$name"
    "$@"
    timings+=("$(printf '%-34s %4ds' "$name" $((SECONDS - start)))")
}

compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" "$@"; }

# dfs ARGS...: the CLI exactly as a user runs it, from $WORK (mounted as the
# caller's directory), without a TTY so stdout is the command's own bytes;
# --no-deps, so a service a step stopped stays stopped (`run` would start it).
dfs() { (cd "$WORK" && timeout 300 "${COMPOSE[@]}" -p "$PROJECT" \
    -f "$ROOT/docker-compose.yml" run --rm --no-deps -T cli "$@" 2>"$WORK/.run.err") ||
    { cat "$WORK/.run.err" >&2; return 1; }; }

# leftovers KIND: ids of this project's containers, volumes or networks.
leftovers() {
    local label="label=com.docker.compose.project=$PROJECT"
    case $1 in
        container) docker container ls -aq --filter "$label" ;;
        *) docker "$1" ls -q --filter "$label" ;;
    esac
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $rc -ne 0 ]]; then
        log "failure: state and recent logs of project $PROJECT"
        compose ps >&2 || true
        compose logs --no-color --tail 40 >&2 || true
    fi
    log "cleanup: down -v"
    local down_start=$SECONDS
    timeout 180 "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" --profile cli --profile mount \
        down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    timings+=("$(printf '%-34s %4ds' "down -v" $((SECONDS - down_start)))")
    # Whatever compose did not remove (e.g. it was interrupted), by label.
    local kind ids
    for kind in container volume network; do
        mapfile -t ids < <(leftovers "$kind")
        if [[ ${#ids[@]} -gt 0 ]]; then
            if [[ $kind == container ]]; then
                docker container rm -fv "${ids[@]}" >/dev/null 2>&1 || true
            else
                docker "$kind" rm "${ids[@]}" >/dev/null 2>&1 || true
            fi
        fi
        if [[ -n "$(leftovers "$kind")" ]]; then
            printf 'compose-test: project %s left a %s behind\n' "$PROJECT" "$kind" >&2
            rc=1
        fi
    done
    rm -rf "$WORK"
    if [[ $MADE_VENDOR == 1 && ${KEEP_VENDOR:-0} != 1 ]]; then rm -rf "$ROOT/vendor"; fi
    if [[ ${#timings[@]} -gt 0 ]]; then
        printf '\ncompose-test timing\n' >&2
        printf '  %s\n' "${timings[@]}" >&2
        printf '  %-34s %4ds\n' total $((SECONDS - STARTED)) >&2
    fi
    if [[ $rc -eq 0 && $PASSED -eq 1 ]]; then
        echo "compose-test: PASSED"
    else
        echo "compose-test: FAILED" >&2
        [[ $rc -ne 0 ]] || rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until DESC SECONDS CMD...: polls CMD every half second until it
# succeeds; fails the test after SECONDS.
wait_until() {
    local desc=$1 limit=$2 deadline=$((SECONDS + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        [[ $SECONDS -lt $deadline ]] || fail "$desc: not within ${limit}s"
        sleep 0.5
    done
}

# ---- helpers on the running stack ----

naming_port() { compose port naming-server 8000 | awk -F: 'NF { print $NF }'; }
http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }
alive_count() { dfs nodes | awk 'NR > 1 && $3 == "alive" { n++ } END { print n + 0 }'; }
alive_nodes_are() { [[ "$(alive_count)" == "$1" ]]; }
# The ids of the alive nodes, one a line, sorted.
alive_ids() { dfs nodes | awk 'NR > 1 && $3 == "alive" { print $1 }' | sort; }
storage_containers() { compose ps -q storage-server | sort; }
healthy_storage_is() {
    local ids n=0 id
    ids=$(storage_containers)
    for id in $ids; do
        [[ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" == healthy ]] && n=$((n + 1))
    done
    [[ $n == "$1" ]]
}
# The container whose hostname appears in a node's advertised URL.
container_of_node() {
    local host
    host=$(dfs nodes | awk -v id="$1" '$1 == id { print $2 }' | sed -E 's#^https?://([^:/]+).*#\1#')
    [[ -n "$host" ]] || fail "node $1 not listed"
    local c
    for c in $(storage_containers); do
        if [[ "$(docker inspect -f '{{.Config.Hostname}}' "$c")" == "$host" ]]; then
            echo "$c"
            return
        fi
    done
    fail "no storage container has hostname $host (node $1)"
}
# check_addresses N: N nodes registered, each advertising its own container
# hostname (http://HOST:5001 and HOST:50051), and a peer container resolves
# another's hostname on the compose network.
check_addresses() {
    local c hosts=() containers
    mapfile -t containers < <(storage_containers)
    for c in "${containers[@]}"; do hosts+=("$(docker inspect -f '{{.Config.Hostname}}' "$c")"); done
    curl -fsS --max-time 5 "http://127.0.0.1:$(naming_port)/nodes" |
        jq -e --argjson n "$1" --args '
            [.nodes[] | (.url | capture("^http://(?<h>[^:/]+):5001$").h) as $h
             | select(any($ARGS.positional[]; . == $h) and .tcp_addr == "\($h):50051")]
            | length == $n' "${hosts[@]}" >/dev/null ||
        fail "nodes do not advertise their container hostnames: $(curl -fsS "http://127.0.0.1:$(naming_port)/nodes")"
    docker exec "${containers[0]}" getent hosts "${hosts[-1]}" >/dev/null ||
        fail "${hosts[-1]} does not resolve in ${containers[0]}"
}
same_bytes() { cmp -s "$1" "$2" || fail "$2 differs from $1"; }

# ---- 1-2: base images and crates ----

prepare_images() { tests/compose/base-images.sh; }

# registry_reachable IMAGE: whether cargo in a throwaway container of IMAGE
# fetches a small crate from the crate registry (index and download), as the
# build's RUN steps would; the probe's output goes to $WORK/.probe.log.
registry_reachable() {
    docker run --rm "$1" timeout 90 sh -c '
        cd /tmp && cargo new -q --vcs none probe && cd probe &&
        echo "itoa = \"1\"" >>Cargo.toml && cargo fetch -q' >"$WORK/.probe.log" 2>&1
}

prepare_crates() {
    [[ ! -e vendor ]] || { log "vendor/ exists: the build uses it"; return; }
    local rust_image
    rust_image=$(awk 'toupper($1) == "FROM" && $2 ~ /^rust:/ { print $2; exit }' Dockerfile)
    if registry_reachable "$rust_image"; then
        log "containers fetch from the crate registry: the build fetches crates itself"
        return
    fi
    local reason
    reason=$(tail -1 "$WORK/.probe.log" | sed 's/^[[:space:]]*//')
    log "containers cannot fetch from the crate registry ($reason): cargo vendor (removed on exit)"
    MADE_VENDOR=1
    cargo vendor --locked --quiet vendor >/dev/null
}

# ---- 3: build and start ----

start_stack() {
    timeout 600 "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" up -d
    wait_until "naming-server /health" 120 http_ok "http://127.0.0.1:$(naming_port)/health"
    wait_until "3 healthy storage containers" 120 healthy_storage_is 3
    wait_until "3 alive nodes in dfs nodes" 120 alive_nodes_are 3
    check_addresses 3
    http_ok "http://127.0.0.1:$(naming_port)/swagger-ui/" || fail "Swagger UI is not served"
    # Read whole, then searched: `curl | grep -q` fails (pipefail) when grep
    # stops reading before curl has written everything.
    local page
    page=$(curl -fsS --max-time 5 "http://127.0.0.1:$(naming_port)/ui")
    grep -q 'Storage nodes' <<<"$page" || fail "the operators' page /ui is not served"
    local spec
    spec=$(curl -fsS --max-time 5 "http://127.0.0.1:$(naming_port)/openapi.json")
    grep -q '"/files/init"' <<<"$spec" || fail "/openapi.json lacks /files/init"
}

# ---- 4: the CLI round trip ----

round_trip() {
    # The caller's directory belongs to an unprivileged user: the cli service
    # reads and writes there as that user.
    chown 4321:4321 "$WORK"
    head -c 20M /dev/urandom >"$WORK/a.bin"
    chmod 644 "$WORK/a.bin"
    dfs create ./a.bin docs/a.bin
    [[ "$(dfs size docs/a.bin)" == 20971520 ]] || fail "size of docs/a.bin"
    dfs read docs/a.bin ./a.copy
    same_bytes "$WORK/a.bin" "$WORK/a.copy"
    [[ "$(stat -c %u "$WORK/a.copy")" == 4321 ]] || fail "a.copy is not owned by the caller"
    dfs read docs/a.bin - >"$WORK/a.stdout"
    same_bytes "$WORK/a.bin" "$WORK/a.stdout"

    local listing
    listing=$(dfs ls docs/)
    grep -Eq '^docs/a\.bin +20971520 +3$' <<<"$listing" || fail "ls docs/ lacks docs/a.bin: $listing"
    local stat
    stat=$(dfs stat docs/a.bin)
    grep -q '^state: *committed' <<<"$stat" || fail "stat: not committed"
    # 3 chunks, 3 alive replicas each.
    [[ $(grep -cE '^ *[0-9]+ +[A-Za-z0-9_-]+ +[0-9]+ +[0-9a-f]{8} +([^,]+\(alive\),){2}[^,]+\(alive\)$' <<<"$stat") == 3 ]] ||
        fail "stat: expected 3 chunks with 3 alive replicas each, got:"$'\n'"$stat"
}

# ---- 4b: the mount service ----

mount_healthy() {
    local container
    container=$(compose --profile mount ps -q mount)
    [[ -n "$container" && "$(docker inspect -f '{{.State.Health.Status}}' "$container")" == healthy ]]
}

mount_service() {
    timeout 300 "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" --profile mount up -d mount
    wait_until "the mount service's FUSE mount" 60 mount_healthy
    compose --profile mount exec -T mount cat /mnt/dfs/docs/a.bin >"$WORK/a.mounted"
    same_bytes "$WORK/a.bin" "$WORK/a.mounted"
    local container
    container=$(compose --profile mount ps -q mount)
    compose --profile mount stop -t 20 mount >/dev/null 2>&1
    [[ "$(docker inspect -f '{{.State.ExitCode}}' "$container")" == 0 ]] ||
        fail "dfs mount did not exit 0 on SIGTERM: $(docker logs "$container" 2>&1 | tail -3)"
}

# ---- 5: scale out ----

scale_out() {
    alive_ids >"$WORK/ids.before"
    timeout 600 "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" up -d --scale storage-server=5
    wait_until "5 healthy storage containers" 120 healthy_storage_is 5
    wait_until "5 alive nodes in dfs nodes" 120 alive_nodes_are 5
    check_addresses 5
    alive_ids >"$WORK/ids.after"
    mapfile -t NEW_IDS < <(comm -13 "$WORK/ids.before" "$WORK/ids.after")
    [[ ${#NEW_IDS[@]} == 2 ]] || fail "expected 2 new nodes, got ${NEW_IDS[*]}"
    mapfile -t OLD_IDS <"$WORK/ids.before"

    head -c 12M /dev/urandom >"$WORK/b.bin"
    chmod 644 "$WORK/b.bin"
    dfs create ./b.bin docs/b.bin --chunk-size 4MiB --replication 5
    local stat id
    stat=$(dfs stat docs/b.bin)
    for id in "${NEW_IDS[@]}"; do
        [[ $(grep -c "$id(alive)" <<<"$stat") == 3 ]] ||
            fail "new node $id does not hold all 3 chunks of docs/b.bin:"$'\n'"$stat"
    done
}

# ---- 6: storage nodes down ----

nodes_down() {
    local first rest=() id
    first=$(container_of_node "${OLD_IDS[0]}")
    for id in "${OLD_IDS[@]:1}"; do rest+=("$(container_of_node "$id")"); done
    docker stop -t 5 "$first" >/dev/null
    dfs read docs/a.bin ./a.copy2
    same_bytes "$WORK/a.bin" "$WORK/a.copy2"
    # Only the two new nodes left: they alone serve docs/b.bin.
    docker stop -t 5 "${rest[@]}" >/dev/null
    dfs read docs/b.bin ./b.copy
    same_bytes "$WORK/b.bin" "$WORK/b.copy"
    docker start "$first" "${rest[@]}" >/dev/null
    wait_until "5 healthy storage containers again" 120 healthy_storage_is 5
    wait_until "5 alive nodes again" 120 alive_nodes_are 5
}

# ---- 6b: a naming server down ----

naming_port_2() { compose port naming-server-2 8000 | awk -F: 'NF { print $NF }'; }

# Heartbeats the second naming server has answered.
heartbeats_on_2() {
    curl -fsS --max-time 5 "http://127.0.0.1:$(naming_port_2)/metrics" |
        awk '/^dfs_http_request_duration_seconds_count\{/ && /heartbeat/ && /status="200"/ { n += $NF } END { print n + 0 }'
}
heartbeats_on_2_beyond() { [[ "$(heartbeats_on_2)" -gt "$1" ]]; }

naming_down() {
    wait_until "naming-server-2 /health" 120 http_ok "http://127.0.0.1:$(naming_port_2)/health"
    compose stop -t 5 naming-server >/dev/null 2>&1
    local before
    before=$(heartbeats_on_2)
    head -c 3M /dev/urandom >"$WORK/c.bin"
    chmod 644 "$WORK/c.bin"
    dfs create ./c.bin docs/c.bin
    dfs read docs/c.bin ./c.copy
    same_bytes "$WORK/c.bin" "$WORK/c.copy"
    [[ "$(docker inspect -f '{{.State.Running}}' "$(compose ps -q naming-server)")" == false ]] ||
        fail "naming-server is running again"
    # Every storage node's heartbeats now go to the second naming server.
    wait_until "heartbeats on naming-server-2" 60 heartbeats_on_2_beyond $((before + 5))
    compose start naming-server >/dev/null 2>&1
    wait_until "naming-server /health again" 120 http_ok "http://127.0.0.1:$(naming_port)/health"
}

# ---- 7: redis restart ----

redis_restart() {
    [[ "$(compose exec -T redis redis-cli config get appendonly | tail -1)" == yes ]] ||
        fail "redis runs without appendonly"
    # SIGKILL: no shutdown save, so what comes back is what the AOF holds.
    compose kill redis >/dev/null 2>&1
    compose start redis >/dev/null 2>&1
    wait_until "naming-server /health after the redis restart" 120 \
        http_ok "http://127.0.0.1:$(naming_port)/health"
    local listing
    listing=$(dfs ls)
    grep -Eq '^docs/a\.bin +20971520 +3$' <<<"$listing" || fail "docs/a.bin lost in the redis restart"
    grep -Eq '^docs/b\.bin +12582912 +3$' <<<"$listing" || fail "docs/b.bin lost in the redis restart"
    wait_until "5 alive nodes after the redis restart" 60 alive_nodes_are 5
    dfs read docs/a.bin ./a.copy3
    same_bytes "$WORK/a.bin" "$WORK/a.copy3"
}

# ---- 8: delete ----

delete_file() {
    dfs delete docs/a.bin
    if dfs size docs/a.bin >/dev/null 2>&1; then fail "docs/a.bin still has a size after delete"; fi
    local listing
    listing=$(dfs ls docs/)
    ! grep -q '^docs/a\.bin ' <<<"$listing" || fail "docs/a.bin still listed after delete"
    grep -q '^docs/b\.bin ' <<<"$listing" || fail "docs/b.bin gone with docs/a.bin"
}

phase "base images" prepare_images
phase "crates for the build" prepare_crates
phase "compose build" timeout 2400 "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker-compose.yml" build
phase "up -d, healthy, 3 nodes" start_stack
phase "cli round trip (20 MiB)" round_trip
phase "mount service reads docs/a.bin" mount_service
phase "scale to 5, replicas on new nodes" scale_out
phase "storage nodes stopped, reads" nodes_down
phase "a naming server stopped" naming_down
phase "redis killed and restarted" redis_restart
phase "delete" delete_file
image_size=$(docker image inspect -f '{{.Size}}' "$DFS_IMAGE" | numfmt --to=iec)
log "runtime image $DFS_IMAGE: $image_size"
PASSED=1
