#!/bin/bash
# Both local S3 servers at once: Ceph radosgw and LocalStack.
#
#   all.sh start    start both (in parallel); if either fails, stop both and exit 1
#   all.sh stop     stop both
#   all.sh status   status of both; exit 0 if both run, 3 if both are stopped, 1 otherwise
#   all.sh env      print `export ...` lines with both endpoints
#   all.sh check    conditional-write check against both
#
# Both servers use the same credentials, region and bucket, so `env` prints
# them once (AWS_*) plus one endpoint variable per server.
set -uo pipefail
S3_NAME=all
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/common.sh"

endpoint_of() { # script
  bash "$HERE/$1" env | sed -n 's/^export AWS_ENDPOINT_URL=//p'
}

do_start() {
  local t0 rc_r rc_l pid_r pid_l
  t0=$(s3_now_ms)
  # The boto3 venv is shared by both scripts: make it once before they run.
  if [ ! -x "$S3_TOOLS_VENV/bin/python" ]; then
    s3_log "creating $S3_TOOLS_VENV (boto3)"
    s3_tools_venv || exit 1
    s3_log "boto3 venv ready ($(s3_secs "$t0") s)"
  fi
  s3_tools_venv || exit 1
  bash "$HERE/radosgw.sh" start & pid_r=$!
  bash "$HERE/localstack.sh" start & pid_l=$!
  wait "$pid_r"; rc_r=$?
  wait "$pid_l"; rc_l=$?
  if [ "$rc_r" -ne 0 ] || [ "$rc_l" -ne 0 ]; then
    s3_log "start failed (radosgw exit $rc_r, localstack exit $rc_l); stopping both"
    do_stop
    exit 1
  fi
  s3_log "both servers ready in $(s3_secs "$t0") s"
}

do_stop() {
  bash "$HERE/radosgw.sh" stop
  bash "$HERE/localstack.sh" stop
}

do_status() { # 0: both running, 3: both stopped, 1: anything else
  local r l
  bash "$HERE/radosgw.sh" status; r=$?
  bash "$HERE/localstack.sh" status; l=$?
  if [ $r -eq 0 ] && [ $l -eq 0 ]; then return 0; fi
  if [ $r -eq 3 ] && [ $l -eq 3 ]; then return 3; fi
  return 1
}

do_env() {
  cat <<EOF
export STRATA_RADOSGW_ENDPOINT=$(endpoint_of radosgw.sh)
export STRATA_LOCALSTACK_ENDPOINT=$(endpoint_of localstack.sh)
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_REGION=$S3_REGION
export AWS_DEFAULT_REGION=$S3_REGION
export AWS_ALLOW_HTTP=true
export STRATA_TEST_BUCKET=$S3_BUCKET
EOF
}

do_check() {
  local rc=0
  echo "== radosgw"
  bash "$HERE/radosgw.sh" check || rc=1
  echo "== localstack"
  bash "$HERE/localstack.sh" check || rc=1
  return $rc
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) do_env ;;
  check) do_check ;;
  *) echo "usage: $0 start|stop|status|env|check" >&2; exit 2 ;;
esac
