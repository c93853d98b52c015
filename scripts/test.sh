#!/usr/bin/env bash
# The test suite: sets itself up, makes sure PostgreSQL runs, lints, runs every test
# against a real Temporal dev server, SQLite and PostgreSQL.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DWF_EXTRAS=dev source "$root/scripts/setup.sh"
cd "$root"
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "[test] starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
# The web inbox's browser tests drive the system's Chromium (Debian's package; Playwright
# downloads no browser): install it when it is missing and we may (root, apt-get).
if [ ! -x "${DWF_TEST_CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing chromium (Debian's package) for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq chromium >&2
  else
    echo "[test] no Chromium at ${DWF_TEST_CHROMIUM:-/usr/bin/chromium}: install Debian's chromium" \
      "package (or set DWF_TEST_CHROMIUM) for tests/integration/test_web_inbox.py" >&2
  fi
fi
echo "[test] ruff" >&2
ruff check sdk worker activities examples tests bench
ruff format --check sdk worker activities examples tests bench
echo "[test] import layers" >&2
lint-imports --no-cache >/dev/null || lint-imports --no-cache
echo "[test] mypy --strict" >&2
mypy sdk worker activities
echo "[test] pytest" >&2
exec python -m pytest "$@"
