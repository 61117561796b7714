#!/usr/bin/env bash
# Builds the benchmark harness in release mode, installs pyarrow for the comparison, and
# prints the figures for 1M and 10M rows (and, with --sweep, the chunk-size sweep).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${STRATA_VENV:-.venv}
if ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow
fi
cargo build --release -q -p strata-bench -p strata-cli
bin=target/release/strata-bench
if [ "${1:-}" = "--sweep" ]; then
  "$bin" --python "$venv/bin/python" --rows 1000000 --chunk-sweep
  exit 0
fi
for rows in ${STRATA_BENCH_ROWS:-1000000 10000000}; do
  "$bin" --python "$venv/bin/python" --rows "$rows"
done
