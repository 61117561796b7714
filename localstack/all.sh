#!/bin/bash
# Every local storage server at once: Ceph radosgw and LocalStack (S3),
# Azurite (Azure Blob Storage) and fake-gcs-server (Google Cloud Storage).
#
#   all.sh start    start all four (in parallel); if any fails, stop all and exit 1
#   all.sh stop     stop all four
#   all.sh status   status of each; exit 0 if all run, 3 if all are stopped, 1 otherwise
#   all.sh env      print `export ...` lines with every endpoint
#   all.sh check    conditional-write check against each
#
# Both S3 servers use the same credentials, region and bucket, so `env` prints
# them once (AWS_*) plus one endpoint variable per server, then the lines of
# azurite.sh env and gcs.sh env (AZURE_*, STORAGE_EMULATOR_HOST: they do not touch S3).
set -uo pipefail
S3_NAME=all
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/common.sh"

endpoint_of() { # script
  bash "$HERE/$1" env | sed -n 's/^export AWS_ENDPOINT_URL=//p'
}

SERVERS=(radosgw localstack azurite gcs)

do_start() {
  local t0 name failed=() pids=()
  t0=$(s3_now_ms)
  # The boto3 venv is shared by the two S3 scripts: make it once before they run.
  if [ ! -x "$S3_TOOLS_VENV/bin/python" ]; then
    s3_log "creating $S3_TOOLS_VENV (boto3)"
    s3_tools_venv || exit 1
    s3_log "boto3 venv ready ($(s3_secs "$t0") s)"
  fi
  s3_tools_venv || exit 1
  for name in "${SERVERS[@]}"; do
    bash "$HERE/$name.sh" start & pids+=($!)
  done
  local i rc
  for i in "${!SERVERS[@]}"; do
    wait "${pids[$i]}"; rc=$?
    [ "$rc" -eq 0 ] || failed+=("${SERVERS[$i]} exit $rc")
  done
  if [ ${#failed[@]} -gt 0 ]; then
    s3_log "start failed ($(IFS=,; echo "${failed[*]}" | sed 's/,/, /g')); stopping all"
    do_stop
    exit 1
  fi
  s3_log "all servers ready in $(s3_secs "$t0") s"
}

do_stop() {
  local name
  for name in "${SERVERS[@]}"; do bash "$HERE/$name.sh" stop; done
}

do_status() { # 0: all running, 3: all stopped, 1: anything else
  local name rc running=0 stopped=0
  for name in "${SERVERS[@]}"; do
    bash "$HERE/$name.sh" status; rc=$?
    [ $rc -eq 0 ] && running=$((running + 1))
    [ $rc -eq 3 ] && stopped=$((stopped + 1))
  done
  if [ $running -eq ${#SERVERS[@]} ]; then return 0; fi
  if [ $stopped -eq ${#SERVERS[@]} ]; then return 3; fi
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
  bash "$HERE/azurite.sh" env
  bash "$HERE/gcs.sh" env
}

do_check() {
  local name rc=0
  for name in "${SERVERS[@]}"; do
    echo "== $name"
    bash "$HERE/$name.sh" check || rc=1
  done
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
