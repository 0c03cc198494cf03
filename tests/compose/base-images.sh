#!/usr/bin/env bash
# Makes local stand-ins for the base images that Dockerfile and
# docker-compose.yml name, for an engine that cannot pull from a registry.
#
# The tags are read from those two files, so the stand-ins always carry the
# exact names the unchanged files use. A tag that already exists locally (a
# real pulled image or a stand-in from an earlier run) is left alone, so the
# script is cheap to re-run. Each stand-in is a Debian root made with
# debootstrap from the mirror apt already uses, then `docker import`ed:
#   debian:*  minbase, like the official slim image (no CA certificates)
#   redis:*   + Debian's redis-server/redis-cli, official-image entrypoint
#             behaviour (runs as `redis`, data in /data, protected mode off)
#   rust:*    + ca-certificates gcc libc6-dev, and this machine's Rust
#             toolchain laid out as the official image does
#             (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo)
# Every stand-in has the import comment "dfs local stand-in" (docker history).
#
# Usage: tests/compose/base-images.sh   (needs docker; making a stand-in needs
# root, through sudo when run as another user, and installs debootstrap with
# apt when it is missing)
set -euo pipefail

SELF=$(realpath "$0")
readonly SELF
cd "$(dirname "$SELF")/../.."
readonly STANDIN_COMMENT="dfs local stand-in"
readonly SUITE=bookworm

log() { printf 'base-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The Debian mirror apt uses on this machine, from its sources (one-line
# `deb` entries or deb822 `URIs:` fields); nothing when apt names none.
debian_mirror() {
    local files=() f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] && files+=("$f")
    done
    [[ ${#files[@]} -gt 0 ]] || return 0
    awk '$1 ~ /^#/ { next }
         $1 == "URIs:" || $1 == "deb" {
             for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\/.*\/debian\/?$/) { print $i; exit }
         }' "${files[@]}"
}

# Image tags named by the Dockerfile's FROM lines and compose's image: lines.
wanted_tags() {
    awk 'toupper($1) == "FROM" { print $2 }' Dockerfile
    awk '$1 == "image:" && $2 !~ /^\$/ && $2 ~ /^(redis|debian|rust):/ { print $2 }' docker-compose.yml
}

WORK=""
cleanup() { [[ -z "$WORK" ]] || rm -rf "$WORK"; }
trap cleanup EXIT

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return
    log "installing debootstrap (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# debootstrap ROOT [PACKAGES]: a minbase Debian root with extra packages.
make_root() {
    local root=$1 include=${2:-} mirror
    mirror=$(debian_mirror)
    [[ -n "$mirror" ]] || die "apt's sources (/etc/apt/sources.list, /etc/apt/sources.list.d/) name no Debian mirror; debootstrap needs the one this machine uses: add it there"
    local args=(--variant=minbase)
    [[ -z "$include" ]] || args+=("--include=$include")
    log "debootstrap $SUITE${include:+ +$include} from $mirror into $root"
    debootstrap "${args[@]}" "$SUITE" "$root" "$mirror" >"$root.log" 2>&1 ||
        { tail -20 "$root.log" >&2; die "debootstrap failed"; }
    # Slim like the official images: no package cache, lists, docs or man pages.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
}

# import ROOT TAG [--change ...]: turn a root into a local image.
import_root() {
    local root=$1 tag=$2
    shift 2
    tar --numeric-owner -C "$root" -c . |
        docker import --message "$STANDIN_COMMENT" "$@" - "$tag" >/dev/null
    log "made $tag ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec))"
}

readonly DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

make_debian() {
    local tag=$1 root="$WORK/debian"
    make_root "$root"
    import_root "$root" "$tag" -c "ENV PATH=$DEFAULT_PATH" -c 'CMD ["bash"]'
}

make_redis() {
    local tag=$1 root="$WORK/redis"
    make_root "$root" redis-server,redis-tools
    mkdir -p "$root/data"
    chroot "$root" chown redis:redis /data
    # What the official image's entrypoint does for `redis-server ...`: drop to
    # the redis user; the official build also turns protected mode off, which
    # Debian's binary leaves on (it would refuse other containers).
    cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no "$@"
    if [ "$(id -u)" = 0 ]; then
        find . \! -user redis -exec chown redis '{}' +
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
EOF
    chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
    import_root "$root" "$tag" -c "ENV PATH=$DEFAULT_PATH" -c 'WORKDIR /data' \
        -c 'VOLUME /data' -c 'EXPOSE 6379' \
        -c 'ENTRYPOINT ["docker-entrypoint.sh"]' -c 'CMD ["redis-server"]'
}

make_rust() {
    local tag=$1 root="$WORK/rust"
    local version=${tag#*:}
    version=${version%%-*}
    local rustup_home=${RUSTUP_HOME:-$HOME/.rustup} cargo_home=${CARGO_HOME:-$HOME/.cargo}
    local toolchain="" full="" dir found
    for dir in "$rustup_home"/toolchains/*-x86_64-unknown-linux-gnu; do
        [[ -x "$dir/bin/rustc" ]] || continue
        found=$("$dir/bin/rustc" -V | awk '{ print $2 }')
        if [[ "$found" == "$version" || "$found" == "$version".* ]]; then
            toolchain=$dir full=$found
            break
        fi
    done
    [[ -n "$toolchain" ]] || die "no Rust $version toolchain under $rustup_home/toolchains"
    make_root "$root" ca-certificates,gcc,libc6-dev
    local name="$full-x86_64-unknown-linux-gnu"
    mkdir -p "$root/usr/local/rustup/toolchains/$name" "$root/usr/local/cargo/bin"
    # --dereference: the toolchain dir may be a symlink (e.g. 1.95.0 -> stable); docs skipped.
    tar -C "$toolchain/" --dereference --exclude=./share/doc -c . |
        tar -C "$root/usr/local/rustup/toolchains/$name" -x
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
        "$name" >"$root/usr/local/rustup/settings.toml"
    cp "$cargo_home/bin/rustup" "$root/usr/local/cargo/bin/rustup"
    local proxy
    for proxy in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt rust-gdb rust-gdbgui rust-lldb; do
        ln -s rustup "$root/usr/local/cargo/bin/$proxy"
    done
    chmod -R a+w "$root/usr/local/rustup" "$root/usr/local/cargo"
    import_root "$root" "$tag" \
        -c "ENV RUSTUP_HOME=/usr/local/rustup" -c "ENV CARGO_HOME=/usr/local/cargo" \
        -c "ENV RUST_VERSION=$full" -c "ENV PATH=/usr/local/cargo/bin:$DEFAULT_PATH" \
        -c 'CMD ["bash"]'
}


mapfile -t tags < <(wanted_tags | sort -u)
[[ ${#tags[@]} -gt 0 ]] || die "no image tags found in Dockerfile / docker-compose.yml"
for tag in "${tags[@]}"; do
    if docker image inspect "$tag" >/dev/null 2>&1; then
        log "$tag exists, kept"
        continue
    fi
    if [[ -z "$WORK" ]]; then
        if [[ $(id -u) != 0 ]]; then
            log "$tag is missing; making stand-ins needs root: sudo"
            exec sudo RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" "$SELF"
        fi
        ensure_debootstrap
        WORK=$(mktemp -d /var/tmp/dfs-base-images.XXXXXX)
    fi
    case "$tag" in
        debian:*) make_debian "$tag" ;;
        redis:*) make_redis "$tag" ;;
        rust:*) make_rust "$tag" ;;
        *) die "no recipe for a stand-in of $tag" ;;
    esac
done
