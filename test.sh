#!/usr/bin/env bash
# Runs every test: formatting, lints, unit, property and end-to-end tests. Installs what the
# tests need (pyarrow, to read Strata's chunks with a second Parquet reader) into .venv.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)

venv=${STRATA_VENV:-$PWD/.venv}
if ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
  echo "== installing pyarrow into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check pyarrow
fi
export STRATA_TEST_PYTHON="$venv/bin/python"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test.log
echo "== all tests passed in $(( $(date +%s) - start )) s"
