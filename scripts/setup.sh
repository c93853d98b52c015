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
stamp="$venv/.dwf-installed"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)-${DWF_EXTRAS:-test}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$venv/bin/temporal" ]; then
  echo "[setup] installing durable-workflows and its dependencies into .venv" >&2
  log="$venv/.dwf-install.log"
  if ! { "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
         "$venv/bin/python" -m pip install --disable-pip-version-check \
           --config-settings editable_mode=compat -e "$root[${DWF_EXTRAS:-test}]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "[setup] installation failed (log above)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
