# Shared by scripts/test and scripts/demo: make a fresh Debian machine ready.
# Installs the system packages that are missing (apt, with sudo when not root),
# creates .venv with Python >= 3.11 and installs the project into it.
# Set RPILINK_NO_APT=1 to skip the apt step (e.g. on a non-Debian box).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RPILINK_VENV:-$REPO/.venv}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_apt_packages() {
    [ "${RPILINK_NO_APT:-0}" = 1 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found: install by hand: $*"
        return 0
    fi
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    log "installing system packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

pick_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "rpilinkd needs Python >= 3.11 (Debian bookworm's python3 is 3.11)" >&2
    return 1
}

ensure_venv() {
    local extras="$1"
    local py
    py="$(pick_python)"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV with $py"
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            ensure_apt_packages python3-venv
            "$py" -m venv "$VENV"
        fi
    fi
    local stamp="$VENV/.rpilinkd-installed"
    if [ ! -f "$stamp" ] || [ "$REPO/pyproject.toml" -nt "$stamp" ] || [ "$(cat "$stamp")" != "$extras" ]; then
        log "installing rpilinkd[$extras] into $VENV"
        # a current pip first: it also reads large package indexes several seconds faster
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e "$REPO[$extras]"
        echo "$extras" >"$stamp"
    fi
}
