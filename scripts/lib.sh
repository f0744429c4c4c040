# shellcheck shell=bash
# Shared helpers for scripts/test.sh and scripts/run.sh. Source it; do not run it.
#
# Environment knobs:
#   PYTHON  interpreter used to create .venv (default: python3; must be >= 3.11)
#   VENV    virtualenv directory (default: .venv in the repository root)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.installed"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (and sudo is not installed)"
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these by hand: $*"
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Create $VENV if it is missing (or broken) with $PYTHON -m venv.
ensure_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        return
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (Python >= 3.11 is required)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is $("$PYTHON" -V 2>&1); Python >= 3.11 is required"
    log "creating $VENV with $("$PYTHON" -V 2>&1)"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 ships venv without ensurepip; python3-venv adds it.
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
    rm -f "$STAMP"
}

# pip install -e ".[test]" into $VENV, unless the stamp says it is already done
# and neither setup.cfg nor pyproject.toml changed since.
ensure_installed() {
    ensure_venv
    if [ -f "$STAMP" ] && [ "$STAMP" -nt "$REPO_ROOT/setup.cfg" ] \
        && [ "$STAMP" -nt "$REPO_ROOT/pyproject.toml" ]; then
        return
    fi
    log "pip install -e '.[test]' into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$REPO_ROOT[test]"
    touch "$STAMP"
}
