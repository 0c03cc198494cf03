# Helpers shared by the scripts here (source it; it runs nothing itself).

# as_root CMD...: runs CMD as root, through sudo unless already root.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# need_redis: installs redis-server (apt) unless it is on PATH.
need_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "==> installing redis-server (apt)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
}

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
