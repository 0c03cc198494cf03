# dfs: one image with all three binaries (naming-server, storage-server, dfs).
#
#   docker build -t dfs:local .           # or: docker compose build
#   docker run --rm -p 8000:8000 -e REDIS_URL=redis://HOST:6379/0 dfs:local
#   docker run --rm dfs:local storage-server --help
#
# No BuildKit-only features (no `RUN --mount`), so the classic builder that
# docker-compose 1.29 drives builds it too. Dependencies are compiled in their
# own layers, keyed on vendor/, the manifests and Cargo.lock only: a source
# change recompiles just the dfs crates. When the build context holds a
# `vendor/` directory (from `cargo vendor`), cargo builds offline from it;
# without one it fetches the locked crates from the crate registry.

# ---- planner: split the context into what decides the dependency build ----
FROM rust:1.95-slim-bookworm AS planner
WORKDIR /ctx
COPY . .
# /recipe: every Cargo.toml, Cargo.lock and build.rs, with an empty stand-in
# for each target root (lib.rs, main.rs, bin/tests/benches/examples files),
# plus the cargo source replacement for vendor/ when the context has one.
# /sources: the context without vendor/. /ctx/vendor: always there, maybe empty.
RUN set -eu; \
    prune='( -path ./vendor -o -path ./target -o -path ./.git ) -prune -o'; \
    mkdir -p /recipe /sources vendor; \
    find . $prune -type f \( -name Cargo.toml -o -name Cargo.lock -o -name build.rs \) -print | \
        tar -cf - -T - | tar -C /recipe -xf -; \
    find . $prune -type f \( -path '*/src/lib.rs' -o -path '*/src/main.rs' -o -path '*/src/bin/*.rs' \
        -o -path '*/tests/*.rs' -o -path '*/benches/*.rs' -o -path '*/examples/*.rs' \) -print | \
    while read -r f; do \
        mkdir -p "/recipe/${f%/*}"; \
        case "$f" in */lib.rs) : >"/recipe/$f" ;; *) echo 'fn main() {}' >"/recipe/$f" ;; esac; \
    done; \
    if [ -n "$(ls -A vendor)" ]; then \
        mkdir -p /recipe/.cargo; \
        printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' \
            '[source.vendored-sources]' 'directory = "vendor"' >/recipe/.cargo/config.toml; \
    fi; \
    tar --exclude=./vendor -cf - . | tar -C /sources -xf -

# ---- build: release binaries with the locked dependency versions ----
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
# Dependencies first: these layers change only with vendor/, the manifests or
# Cargo.lock, so a source change recompiles just the dfs crates.
COPY --from=planner /ctx/vendor/ ./vendor/
COPY --from=planner /recipe/ ./
RUN cargo build --release --locked --bins -p naming-server -p storage-server -p dfs-cli
COPY --from=planner /sources/ ./
# The real sources may be older than the stand-ins built above: touch them so
# cargo rebuilds the dfs crates.
RUN find . \( -path ./vendor -o -path ./target \) -prune -o -name '*.rs' -exec touch {} + && \
    cargo build --release --locked --bins -p naming-server -p storage-server -p dfs-cli && \
    mkdir -p /out && \
    cp target/release/naming-server target/release/storage-server target/release/dfs /out/
# Line tables stay for backtraces with file:line, compressed: half the size.
RUN objcopy --compress-debug-sections=zlib /out/naming-server && \
    objcopy --compress-debug-sections=zlib /out/storage-server && \
    objcopy --compress-debug-sections=zlib /out/dfs

# ---- runtime: slim Debian, the three binaries, CA certificates, non-root ----
FROM debian:bookworm-slim
# CA bundle for HTTPS to Google Cloud Storage (rustls reads the system roots).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# `dfs-healthcheck`: exit 0 when this container's server answers GET /health
# with 200 (a storage node whose disk is full answers 200 too, with status
# "full": it is alive and serves reads). Port from HEALTHCHECK_PORT, else
# LISTEN_ADDR, else the server's default (5001 for storage-server, 8000
# otherwise). Uses bash's /dev/tcp, so the image needs no curl.
RUN printf '%s\n' \
        '#!/bin/bash' \
        'port=${HEALTHCHECK_PORT:-${LISTEN_ADDR##*:}}' \
        'if [ -z "$port" ]; then' \
        '  case "$(tr "\0" " " </proc/1/cmdline)" in *storage-server*) port=5001 ;; *) port=8000 ;; esac' \
        'fi' \
        'exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1' \
        'printf "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3' \
        'IFS= read -r -t 5 status <&3 || exit 1' \
        'case "$status" in "HTTP/1."?" 200 "*) exit 0 ;; *) echo "$status"; exit 1 ;; esac' \
        >/usr/local/bin/dfs-healthcheck && \
    chmod 755 /usr/local/bin/dfs-healthcheck && \
    useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin dfs && \
    mkdir -p /data && chown dfs:dfs /data
COPY --from=build /out/ /usr/local/bin/
ENV DATA_DIR=/data RUST_LOG=info
WORKDIR /data
USER dfs
EXPOSE 8000 5001 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["dfs-healthcheck"]
CMD ["naming-server"]
