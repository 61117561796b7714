#!/usr/bin/env bash
# Builds the benchmark harness in release mode, installs pyarrow for the comparison, and
# prints the figures for 1M and 10M rows (and, with --sweep, the chunk-size sweep). Then the
# same tables through the Python package (installed from ./python into the venv), beside
# pyarrow reading one zstd Parquet file, and delta-rs and Lance doing the same steps:
# bench/python_bench.py, which ends with one table of every tool's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${STRATA_VENV:-.venv}
# deltalake and pylance: the peers python_bench.py runs beside Strata, step by step, at the
# versions the figures in the README were measured with.
peers=(deltalake==1.6.6 pylance==14.0.2)
if ! "$venv/bin/python" -c 'import pyarrow, numpy, deltalake, lance
assert deltalake.__version__ == "1.6.6" and lance.__version__ == "14.0.2"' 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow numpy "${peers[@]}"
fi
cargo build --release -q -p strata-bench -p strata-cli
bin=${CARGO_TARGET_DIR:-target}/release/strata-bench
if [ "${1:-}" = "--sweep" ]; then
  "$bin" --python "$venv/bin/python" --rows 1000000 --chunk-sweep
  exit 0
fi
for rows in ${STRATA_BENCH_ROWS:-1000000 10000000}; do
  "$bin" --python "$venv/bin/python" --rows "$rows"
done
"$venv/bin/pip" install -q --disable-pip-version-check ./python
for rows in ${STRATA_BENCH_ROWS:-1000000 10000000}; do
  "$venv/bin/python" bench/python_bench.py --rows "$rows"
done
