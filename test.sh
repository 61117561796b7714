#!/usr/bin/env bash
# Runs every test: formatting, lints, unit, property, end-to-end and S3 tests. Installs and
# starts what the tests need: pyarrow (a second Parquet reader) in .venv, and two real S3
# servers bound to 127.0.0.1 (Ceph radosgw and LocalStack, see localstack/README.md), which
# are stopped again at the end.
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
echo "== building the tests"
cargo test --workspace --no-run -q

echo "== starting the S3 servers (radosgw, LocalStack)"
trap 'bash localstack/all.sh stop >/dev/null 2>&1 || true' EXIT
if ! bash localstack/all.sh start; then
  echo "error: the S3 servers did not start (see above); the S3 tests cannot run" >&2
  exit 1
fi
eval "$(bash localstack/all.sh env)"

echo "== cargo test"
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee target/test.log || status=$?
count() { awk -v what="$1" '/^test result:/ { for (i = 1; i < NF; i++) if (index($(i + 1), what) == 1) n += $i } END { print n + 0 }' target/test.log; }
passed=$(count passed)
failed=$(count failed)
echo "== $(( $(date +%s) - start )) s"
echo "tests: $passed passed, $failed failed"
exit "$status"
