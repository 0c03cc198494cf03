#!/usr/bin/env bash
# bench-area: http
# Chunk reads over HTTP, dfs against nginx serving the very same chunk files
# (one storage node, the cluster token set: the realistic configuration;
# wrk sends the Authorization header to both):
#   - 4 KiB Range GETs (`bytes=0-4095`) at 16 connections: req/s and latency;
#   - GETs of whole 8 MiB chunks at 16 connections: MiB/s.
# Prints result lines (bench/README.md); run alone or through bench/run.sh.
#
#   bench/http.sh        (BENCH_QUICK=1: 2 chunks, 1 s per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_setup http

CONNECTIONS=16
if quick; then CHUNKS=2 SECONDS_EACH=1; else CHUNKS=${HTTP_CHUNKS:-16} SECONDS_EACH=${HTTP_SECONDS:-10}; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

start_redis
start_naming REPLICATION_FACTOR=1
start_storage node
wait_live 1

log "storing $CHUNKS chunks of 8 MiB"
random_file "$WORK/input" $((CHUNKS * 8))
"$BIN/dfs" create "$WORK/input" bench/http --replication 1 --chunk-size 8MiB >/dev/null
rm -f "$WORK/input"

# The same chunk files, by their paths under the node's DATA_DIR for nginx
# and by their ids for the storage server.
: >"$WORK/dfs.paths"
: >"$WORK/nginx.paths"
for id in $(chunk_ids bench/http); do
    file=$(find "$STORAGE_DIR/chunks" -type f -name "$id" | head -1)
    [ -n "$file" ] || { echo "error: chunk $id not found under $STORAGE_DIR" >&2; exit 1; }
    echo "/chunks/$id" >>"$WORK/dfs.paths"
    echo "${file#"$STORAGE_DIR"}" >>"$WORK/nginx.paths"
done

# nginx as one would deploy it for static files: sendfile, keep-alive, one
# worker per core, no access log. `user root` because the data directory is
# a 0700 temp directory.
nginx_port=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
user root;
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $STORAGE_DIR;
        default_type application/octet-stream;
    }
}
CONF
start_bg "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx.log" -c "$WORK/nginx/nginx.conf"
NGINX_URL=http://127.0.0.1:$nginx_port
wait_for nginx curl -fs -o /dev/null "$NGINX_URL$(head -1 "$WORK/nginx.paths")"

auth=(-H "Authorization: Bearer $DFS_TOKEN")
# Both serve the same bytes, and dfs answers the range with a 206.
first_dfs=$STORAGE_URL$(head -1 "$WORK/dfs.paths")
first_nginx=$NGINX_URL$(head -1 "$WORK/nginx.paths")
cmp <(curl -fsS "${auth[@]}" "$first_dfs") <(curl -fsS "$first_nginx")
[ "$(curl -fsS "${auth[@]}" -H 'Range: bytes=0-4095' -o /dev/null -w '%{http_code} %{size_download}' "$first_dfs")" = "206 4096" ]

# wrk_run BASE_URL PATHS [wrk flags...]: one wrk run; prints its JSON summary.
wrk_run() {
    local base=$1 paths=$2
    shift 2
    local out
    out=$(wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_EACH}s" "${auth[@]}" "$@" \
        -s bench/wrk.lua "$base" -- "$paths" | grep '^{')
    python3 -c '
import json, sys
s = json.loads(sys.argv[1])
if s["errors"] or s["status_errors"] or not s["requests"]:
    sys.exit(f"error: wrk on {sys.argv[2]}: {s}")' "$out" "$base"
    echo "$out"
}

# field JSON KEY: one number of a wrk summary.
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

measure_pair() { # sets DFS_OUT and NGINX_OUT: wrk summaries of both, in this run's order
    if dfs_first; then
        DFS_OUT=$(wrk_run "$STORAGE_URL" "$WORK/dfs.paths" "$@")
        NGINX_OUT=$(wrk_run "$NGINX_URL" "$WORK/nginx.paths" "$@")
    else
        NGINX_OUT=$(wrk_run "$NGINX_URL" "$WORK/nginx.paths" "$@")
        DFS_OUT=$(wrk_run "$STORAGE_URL" "$WORK/dfs.paths" "$@")
    fi
}
per_sec() { calc "$(field "$1" requests) / ($(field "$1" duration_us) / 1e6)"; }
mib_per_sec() { calc "$(field "$1" bytes) / 2**20 / ($(field "$1" duration_us) / 1e6)"; }
ms() { calc "$(field "$1" "$2") / 1000"; }

log "4 KiB Range GETs, $CONNECTIONS connections, ${SECONDS_EACH} s each"
measure_pair -H 'Range: bytes=0-4095'
row row="Range GET 4 KiB, 16 conn" dfs="$(per_sec "$DFS_OUT")" baseline="$(per_sec "$NGINX_OUT")" \
    unit=req/s higher_is_better=true baseline_name=nginx min_ratio=0.5 plot=bars
row row="Range GET 4 KiB, 16 conn, mean latency" dfs="$(ms "$DFS_OUT" latency_mean_us)" \
    baseline="$(ms "$NGINX_OUT" latency_mean_us)" unit=ms higher_is_better=false baseline_name=nginx
row row="Range GET 4 KiB, 16 conn, p99 latency" dfs="$(ms "$DFS_OUT" latency_p99_us)" \
    baseline="$(ms "$NGINX_OUT" latency_p99_us)" unit=ms higher_is_better=false baseline_name=nginx

log "GETs of whole 8 MiB chunks, $CONNECTIONS connections, ${SECONDS_EACH} s each"
measure_pair
row row="GET whole 8 MiB chunk, 16 conn" dfs="$(mib_per_sec "$DFS_OUT")" \
    baseline="$(mib_per_sec "$NGINX_OUT")" unit=MiB/s higher_is_better=true baseline_name=nginx \
    min_ratio=0.95 plot=bars
