#!/usr/bin/env bash
# Creates ./.venv and installs the project into it (once per change of pyproject.toml).
# Sourced by scripts/demo.sh and scripts/test.sh; needs only python3 (3.11+) and PyPI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv" >&2
  "$py" -m venv "$venv"
fi
# One install serves the demo and the tests: both ask for the "dev" extras (a superset of
# "test"), and an install made for "dev" also satisfies a request for "test".
extras="${DWF_EXTRAS:-dev}"
stamp="$venv/.dwf-installed"
digest="$(sha256sum < "$root/pyproject.toml" | cut -d' ' -f1)"
installed="$(cat "$stamp" 2>/dev/null || true)"
case "$installed" in
  "$digest-$extras"|"$digest-dev") current=yes ;;
  *) current=no ;;
esac
if [ "$current" != yes ] || [ ! -x "$venv/bin/temporal" ]; then
  echo "[setup] installing durable-workflows and its dependencies into .venv" >&2
  log="$venv/.dwf-install.log"
  if ! { "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
         "$venv/bin/python" -m pip install --disable-pip-version-check \
           --config-settings editable_mode=compat -e "$root[$extras]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "[setup] installation failed (log above)" >&2
    exit 1
  fi
  echo "$digest-$extras" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
