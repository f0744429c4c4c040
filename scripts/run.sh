#!/usr/bin/env bash
# `make run`: set up .venv, install the package, then run the server in the
# foreground with the configuration given (default: etc/b2bua.toml).
# Extra arguments are passed to the b2bua twistd plugin, after --config.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_installed

CONFIG="${CONFIG:-etc/b2bua.toml}"
exec "$VENV/bin/twistd" -n b2bua --config "$CONFIG" "$@"
