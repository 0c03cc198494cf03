# Helpers shared by the scripts here (source it; it runs nothing itself).

# as_root CMD...: runs CMD as root, through sudo unless already root.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# apt_install PACKAGE...: installs Debian packages, updating apt's lists
# once per shell first.
apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then
        as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

# need_cmd COMMAND PACKAGE: installs the Debian PACKAGE unless COMMAND is on
# PATH (or in /usr/sbin, where nginx lands).
need_cmd() {
    local cmd=$1 package=$2
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
        echo "==> installing $package (apt)"
        apt_install "$package"
    fi
}

# need_redis: installs redis-server (apt) unless it is on PATH.
need_redis() { need_cmd redis-server redis-server; }

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
        apt_install python3-pip
    fi
    python3 -m pip install -q "$package" \
        || python3 -m pip install -q --break-system-packages "$package"
}
