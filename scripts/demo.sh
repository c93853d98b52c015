#!/usr/bin/env bash
# The demo: sets itself up, starts a real Temporal dev server, runs the expense-approval
# example end to end (approved, rejected, a failing step retried), prints what happened.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DWF_EXTRAS=dev source "$root/scripts/setup.sh"
cd "$root"
exec python -m examples.demo "$@"
