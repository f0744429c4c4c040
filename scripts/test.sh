#!/usr/bin/env bash
# The project's test command (`make test`, run by .ci/run): set up .venv, install
# the package with its test extras, make sure SIPp is present, then run every check.
# Exits non-zero if any check fails, including pytest collecting no test at all.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_installed

# SIPp drives the integration tests and the benchmarks; those tests fail (they do
# not skip) without it, so install it here rather than let them be skipped.
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
# The malformed-input tests run the server in a network namespace (ip netns).
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# A real softphone registers and answers calls (test_softphone.py): baresip, headless.
command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

export PATH="$VENV/bin:$PATH"

log "ruff check b2bua plugins tests bench examples"
ruff check b2bua plugins tests bench examples

log "mypy (strict: b2bua/, plugins/, examples/)"
mypy

log "lint-imports"
lint-imports

log "pytest"
# pytest exits 5 when it collects no test; set -e turns that, like any other
# non-zero status, into a failure of this script.
pytest "$@"
