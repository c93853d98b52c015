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
echo "[test] ruff" >&2
ruff check sdk worker activities examples tests bench
ruff format --check sdk worker activities examples tests bench
echo "[test] import layers" >&2
lint-imports --no-cache >/dev/null || lint-imports --no-cache
echo "[test] mypy --strict" >&2
mypy sdk worker activities
echo "[test] pytest" >&2
exec python -m pytest "$@"
