#!/usr/bin/env bash
# Runs every test: formatting, lints, unit, property, end-to-end, cloud storage and Python tests.
# Installs and starts what the tests need: Python packages in .venv (python/requirements-test.txt:
# maturin, pytest, and the readers the tests use: pyarrow, Polars, DuckDB with its Iceberg
# extension, pandas, pyiceberg), and four real storage servers bound to 127.0.0.1 (Ceph radosgw
# and LocalStack for S3, Azurite for Azure, fake-gcs-server for GCS; see localstack/README.md),
# which are stopped again at the end. The servers and Python packages install in the background
# while the code builds, with uv (from PyPI, into target/uv) where it installs, else pip. The
# tests' temporary folders go to memory (/dev/shm) when it has room: the tests write and sync
# many small files, and on a disk most of their time went to waiting for it.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
mkdir -p target
log() { echo "== $* ($(( $(date +%s) - start )) s)"; }

# 1. In the background: the storage servers, and the Python packages the tests read data with.
scratch=
if [ -z "${STRATA_TEST_TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
  [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')" -gt $((8 * 1024 * 1024)) ]; then
  scratch=$(mktemp -d /dev/shm/strata-tests.XXXXXX)
  export TMPDIR=$scratch
elif [ -n "${STRATA_TEST_TMPDIR:-}" ]; then
  export TMPDIR=$STRATA_TEST_TMPDIR
fi
trap 'bash localstack/all.sh stop >/dev/null 2>&1 || true; [ -z "$scratch" ] || rm -rf "$scratch"' EXIT
# uv installs the Python packages below and the servers' (localstack/common.sh): it takes a
# fraction of pip's CPU time, which the build would otherwise share. pip is the fallback. Both
# background jobs below install it first, whichever comes first (the other waits on the lock).
uv_dir=$PWD/target/uv
with_uv() { # command...: runs it with STRATA_UV set if uv is (or can be) installed
  flock "$PWD/target/uv.lock" bash -c '[ -x "$1/bin/uv" ] || {
    python3 -m venv "$1" && "$1/bin/pip" install -q --disable-pip-version-check "uv==0.13.9"
  } >>"$1.log" 2>&1' _ "$uv_dir" || echo "note: could not install uv ($uv_dir.log); pip installs" >&2
  if [ -x "$uv_dir/bin/uv" ]; then
    STRATA_UV=$uv_dir/bin/uv "$@"
  else
    "$@"
  fi
}
with_uv bash localstack/all.sh start >target/s3-start.log 2>&1 &
servers=$!
venv=${STRATA_VENV:-$PWD/.venv}
with_uv bash python/install-test-deps.sh "$venv" >target/venv.log 2>&1 &
packages=$!

# 2. Formatting, then one build that is also the lint pass: the workspace's crates are
# compiled by clippy-driver (as `cargo clippy -- -D warnings` does), so the dependencies are
# built once, for the tests, instead of once more for the lints. The Python package is built
# (and so linted) by python/test.sh below, with the settings maturin gives PyO3: building it
# here too would build PyO3 twice.
log "cargo fmt --check"
cargo fmt --all -- --check
driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
if [ -z "$driver" ]; then
  echo "error: clippy-driver not found; install it with 'rustup component add clippy'" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER=$driver
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# A first build gains nothing from incremental compilation's bookkeeping; later runs do.
if [ ! -d "${CARGO_TARGET_DIR:-target}/debug" ]; then
  export CARGO_INCREMENTAL=0
fi
log "building and linting (clippy -D warnings) every target"
cargo build --workspace --exclude strata-python --all-targets -q

# 3. Wait for what ran in the background.
log "waiting for the storage servers and the Python packages"
if ! wait "$servers"; then
  cat target/s3-start.log >&2
  echo "error: the storage servers did not start (see above); the cloud tests cannot run" >&2
  exit 1
fi
if ! wait "$packages"; then
  cat target/venv.log >&2
  echo "error: could not install the Python packages into $venv (see above)" >&2
  exit 1
fi
export STRATA_TEST_PYTHON="$venv/bin/python"
eval "$(bash localstack/all.sh env)"

# 4. The tests: every test binary's tests run side by side (cargo-nextest), then the doc tests.
status=0
if command -v cargo-nextest >/dev/null 2>&1; then
  log "cargo nextest run"
  cargo nextest run --workspace --exclude strata-python --no-fail-fast 2>&1 | tee target/test.log || status=$?
  passed=$(sed -n 's/.* tests run: \([0-9]*\) passed.*/\1/p' target/test.log | tail -n 1)
  # (nextest names a failed test twice: as it fails, and in the summary.)
  failed=$( { grep -E '^ +(FAIL|TIMEOUT|SIGSEGV|SIGABRT) \[' target/test.log || true; } | sed 's/.*) //' | sort -u | wc -l)
else
  log "cargo test (cargo-nextest is not installed: the binaries run one after another)"
  cargo test --workspace --exclude strata-python --no-fail-fast 2>&1 | tee target/test.log || status=$?
  count() { awk -v what="$1" '/^test result:/ { for (i = 1; i < NF; i++) if (index($(i + 1), what) == 1) n += $i } END { print n + 0 }' target/test.log; }
  passed=$(count passed)
  failed=$(count failed)
fi
log "cargo test --doc"
cargo test --workspace --exclude strata-python --doc -q 2>&1 | tee -a target/test.log || status=$?
log "the Python package (python/test.sh)"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
if STRATA_BIN="$target_dir/debug/strata" python/test.sh "$venv" 2>&1 | tee target/python.log; then
  python_passed=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' target/python.log | tail -n 1)
  passed=$(( ${passed:-0} + ${python_passed:-0} ))
else
  status=1
  failed=$(( ${failed:-0} + 1 ))
fi
log "done"
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
