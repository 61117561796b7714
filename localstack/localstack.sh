#!/bin/bash
# LocalStack S3 on 127.0.0.1, run on the host (PyPI localstack-core in a venv, no Docker).
#
#   localstack.sh start    install what is missing, start, create the bucket,
#                          wait for a signed S3 request (no-op if already running)
#   localstack.sh stop     stop the server started by `start`
#   localstack.sh status   exit 0 if running and answering, 3 if stopped, 1 otherwise
#   localstack.sh env      print `export ...` lines for the server
#   localstack.sh check    check that conditional PUTs are refused as S3 requires
#
# Settings (environment):
#   STRATA_LOCALSTACK_PORT     S3 port (4566)
#   STRATA_LOCALSTACK_DIR      state directory (/tmp/strata-localstack), wiped at start
#   STRATA_LOCALSTACK_TIMEOUT  seconds to wait for readiness (120)
#   STRATA_LOCALSTACK_PYTHON   Python >= 3.12 to build the venv with (found automatically)
#   STRATA_TEST_BUCKET         bucket created at start (strata)
#   STRATA_S3_ACCESS_KEY / STRATA_S3_SECRET_KEY / STRATA_S3_REGION  (strata / stratasecret / us-east-1)
# localstack-core 2026.3.0 needs Python >= 3.12 although it declares >= 3.10:
# on 3.11 it starts and answers its health check, then fails every S3 call.
# Objects are kept in memory and are gone after `stop`.
set -euo pipefail
S3_NAME=localstack
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT=${STRATA_LOCALSTACK_PORT:-4566}
DIR=${STRATA_LOCALSTACK_DIR:-/tmp/strata-localstack}
TIMEOUT=${STRATA_LOCALSTACK_TIMEOUT:-120}
ENDPOINT=http://127.0.0.1:$PORT
MARKER=.strata-localstack
PIDFILE=$DIR/localstack.pid
LOG=$DIR/localstack.log
LS_VENV=$S3_VENV_ROOT/localstack

py_ok() { # python -> true if 3.12 or 3.13 with venv and ssl
  "$1" -c 'import sys, venv, ensurepip, ssl; sys.exit(not ((3, 12) <= sys.version_info[:2] <= (3, 13)))' >/dev/null 2>&1
}

find_python() {
  local c root=${PYENV_ROOT:-$HOME/.pyenv}
  local cands=()
  [ -n "${STRATA_LOCALSTACK_PYTHON:-}" ] && cands+=("$STRATA_LOCALSTACK_PYTHON")
  # pyenv installs, newest first
  if [ -d "$root/versions" ]; then
    while IFS= read -r c; do cands+=("$root/versions/$c/bin/python3"); done < <(
      ls "$root/versions" 2>/dev/null | grep -E '^3\.1[23]\.[0-9]+$' | sort -t. -k1,1n -k2,2nr -k3,3nr)
  fi
  cands+=(python3.13 python3.12 /usr/bin/python3.13 /usr/bin/python3.12 /usr/local/bin/python3.13 /usr/local/bin/python3.12 python3)
  if command -v uv >/dev/null 2>&1; then
    c=$(UV_PYTHON_DOWNLOADS=never uv python find '>=3.12,<3.14' 2>/dev/null) && cands+=("$c")
  fi
  for c in "${cands[@]}"; do
    [ -n "$c" ] || continue
    if [ -x "$c" ] || command -v "$c" >/dev/null 2>&1; then
      if py_ok "$c"; then
        if [ -x "$c" ]; then echo "$c"; else command -v "$c"; fi
        return 0
      fi
    fi
  done
  return 1
}

install_python() {
  # Debian releases newer than bookworm ship python3.12 or python3.13.
  local v
  s3_locked /tmp/strata-s3-apt.lock apt-get update -q >/dev/null 2>&1 </dev/null || true
  for v in 3.13 3.12; do
    if apt-cache show "python$v-venv" >/dev/null 2>&1; then
      s3_apt_install "python$v" "python$v-venv" && return 0
    fi
  done
  return 1
}

install_packages() {
  local t0 py
  t0=$(s3_now_ms)
  if ! py=$(find_python); then
    s3_log "no Python 3.12 or 3.13 found; trying Debian packages"
    if ! install_python || ! py=$(find_python); then
      s3_die "localstack-core needs Python 3.12 or 3.13 (with venv and ssl); none found on PATH, under ${PYENV_ROOT:-$HOME/.pyenv}/versions or in Debian's packages. Set STRATA_LOCALSTACK_PYTHON=/path/to/python3.12"
    fi
  fi
  if [ ! -x "$LS_VENV/bin/python" ]; then s3_log "creating $LS_VENV with $py (localstack-core)"; fi
  s3_make_venv "$LS_VENV" "$S3_HERE/requirements-localstack.txt" "$S3_HERE/constraints-localstack.txt" "$py" ||
    s3_die "could not install localstack-core into $LS_VENV"
  if [ ! -x "$S3_TOOLS_VENV/bin/python" ]; then s3_log "creating $S3_TOOLS_VENV (boto3)"; fi
  s3_tools_venv
  s3_log "dependencies ready ($(s3_secs "$t0") s)"
}

do_stop() {
  s3_stop_pids "$PIDFILE"
}

fail() {
  echo "$S3_NAME: error: $*" >&2
  s3_tail_logs "$LOG"
  do_stop
  exit 1
}

wait_ready() { # timeout
  s3_check "$ENDPOINT" ready "$S3_BUCKET" --timeout "$1" --pid-file "$PIDFILE"
}

start_server() {
  s3_port_busy "$PORT" && s3_die "port 127.0.0.1:$PORT is already in use (set STRATA_LOCALSTACK_PORT)"
  s3_prepare_dir "$DIR" "$MARKER"
  mkdir -p "$DIR/fs" "$DIR/home" "$DIR/tmp"
  # A clean environment, so settings from the caller's shell do not leak in.
  # GATEWAY_SERVER=hypercorn: the default server binds 0.0.0.0 whatever GATEWAY_LISTEN says.
  # DNS_ADDRESS=0: no DNS server on 0.0.0.0:53. DISABLE_EVENTS=1: no analytics.
  # SKIP_SSL_CERT_DOWNLOAD=1: use a self-signed certificate instead of downloading one.
  env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$DIR/home" TMPDIR="$DIR/tmp" LANG=C.UTF-8 \
    GATEWAY_LISTEN="127.0.0.1:$PORT" GATEWAY_SERVER=hypercorn \
    LOCALSTACK_HOST="127.0.0.1:$PORT" \
    SERVICES=s3 EAGER_SERVICE_LOADING=1 \
    DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    FILESYSTEM_ROOT="$DIR/fs" PERSISTENCE=0 \
    setsid "$LS_VENV/bin/python" -m localstack.runtime.main </dev/null >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
}

do_start() {
  [ -x "$S3_TOOLS_VENV/bin/python" ] || s3_tools_venv
  if s3_pid_alive "$PIDFILE"; then
    if wait_ready 15; then
      s3_log "already running on $ENDPOINT, bucket $S3_BUCKET"
      return 0
    fi
    s3_log "running but not answering; restarting"
  fi
  # Leftovers of a broken run hold no data worth a clean shutdown.
  export S3_STOP_WAIT=10
  [ -e "$PIDFILE" ] && do_stop
  install_packages
  # As with radosgw: a failed start is reported and stopped, then tried again.
  s3_start_attempts start_server "$TIMEOUT" "no signed S3 request succeeded on $ENDPOINT within $TIMEOUT s" \
    "ready on $ENDPOINT, bucket $S3_BUCKET" "LocalStack"
}

do_status() {
  if [ ! -e "$PIDFILE" ]; then echo "localstack: stopped"; return 3; fi
  if ! s3_pid_alive "$PIDFILE"; then echo "localstack: not running (stale pid file in $DIR)"; return 1; fi
  if [ -x "$S3_TOOLS_VENV/bin/python" ] && wait_ready 5 2>/dev/null; then
    echo "localstack: running on $ENDPOINT (state in $DIR)"
    return 0
  fi
  echo "localstack: process running but S3 not answering on $ENDPOINT"
  return 1
}

do_check() {
  s3_pid_alive "$PIDFILE" || s3_die "not running; run: $0 start"
  s3_tools_venv
  s3_check "$ENDPOINT" conditional "$S3_BUCKET"
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop; s3_log "stopped" ;;
  status) do_status ;;
  env) s3_print_env "$ENDPOINT" ;;
  check) do_check ;;
  *) echo "usage: $0 start|stop|status|env|check" >&2; exit 2 ;;
esac
