#!/usr/bin/env bash
# Tests the Python package: installs the test dependencies into the virtual environment VENV
# (made if missing), builds the extension (maturin, debug profile, in the workspace's target
# folder so that the dependencies are shared with the other builds) and installs it there,
# builds the command line the cross tests run, and runs pytest.
#
# The S3 tests need radosgw: when STRATA_RADOSGW_ENDPOINT is not set, this script starts it
# (and stops it again at the end). STRATA_BIN, when set, is the strata binary the cross tests
# run (otherwise it is built).
#
# Usage: python/test.sh VENV [pytest arguments...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
if [ $# -lt 1 ]; then
  echo "usage: python/test.sh VENV [pytest arguments...]" >&2
  exit 2
fi
venv=$1
shift
case "$venv" in /*) ;; *) venv=$PWD/$venv ;; esac
start=$(date +%s)
log() { echo "== $* ($(( $(date +%s) - start )) s)"; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$CARGO_TARGET_DIR"

# The S3 server, started in the background while the code builds.
started_s3=0
s3_pid=
if [ -z "${STRATA_RADOSGW_ENDPOINT:-}" ]; then
  if ! bash "$root/localstack/radosgw.sh" status >/dev/null 2>&1; then
    log "starting radosgw"
    bash "$root/localstack/radosgw.sh" start >"$CARGO_TARGET_DIR/python-s3.log" 2>&1 &
    s3_pid=$!
    started_s3=1
  fi
fi
bin_dir=
cleanup() {
  [ -z "$bin_dir" ] || rm -rf "$bin_dir"
  if [ "$started_s3" = 1 ]; then
    bash "$root/localstack/radosgw.sh" stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

log "test dependencies in $venv"
bash "$here/install-test-deps.sh" "$venv"

log "building the extension"
wheels=$(mktemp -d)
# (workspace-features: the shared dependencies' features as the workspace's test build has
# them, so that build's artifacts are reused; see python/Cargo.toml.)
"$venv/bin/maturin" build --profile dev --quiet -m "$here/Cargo.toml" \
  --features workspace-features --interpreter "$venv/bin/python" -o "$wheels"
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/*.whl
rm -rf "$wheels"

if [ -z "${STRATA_BIN:-}" ]; then
  log "building the command line"
  cargo build -q -p strata-cli --manifest-path "$root/Cargo.toml"
  # A copy: other builds in a shared target folder may replace the binary while tests run.
  bin_dir=$(mktemp -d)
  cp "$CARGO_TARGET_DIR/debug/strata" "$bin_dir/strata"
  export STRATA_BIN=$bin_dir/strata
fi

if [ -n "$s3_pid" ]; then
  log "waiting for radosgw"
  if ! wait "$s3_pid"; then
    cat "$CARGO_TARGET_DIR/python-s3.log" >&2
    echo "error: radosgw did not start; the S3 tests cannot run" >&2
    exit 1
  fi
fi
if [ -z "${STRATA_RADOSGW_ENDPOINT:-}" ]; then
  eval "$(bash "$root/localstack/radosgw.sh" env)"
  export STRATA_RADOSGW_ENDPOINT=$AWS_ENDPOINT_URL
  # The tests give the endpoint as a remote option, as users of several stores do.
  unset AWS_ENDPOINT_URL
fi

log "pytest"
cd "$here"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
log "done"
