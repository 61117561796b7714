#!/usr/bin/env bash
# Usage: python/install-test-deps.sh VENV
# Makes the venv VENV if it is missing and installs python/requirements-test.txt into it,
# unless python/check-test-deps.py finds them there already: with uv when STRATA_UV names a
# uv binary (test.sh installs one), else with pip. The venv keeps pip: python/test.sh installs
# the package's wheel with it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$1
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if "$venv/bin/python" "$here/check-test-deps.py" 2>/dev/null; then
  exit 0
fi
if [ -n "${STRATA_UV:-}" ] && [ -x "$STRATA_UV" ]; then
  "$STRATA_UV" pip install -q --python "$venv/bin/python" -r "$here/requirements-test.txt"
else
  "$venv/bin/pip" install -q --no-compile --disable-pip-version-check -r "$here/requirements-test.txt"
fi
