#!/bin/bash
# Azurite (Azure Blob Storage emulator) on 127.0.0.1, run on the host from
# the npm registry's `azurite` package (no Docker). Blob service only.
#
#   azurite.sh start    install what is missing, start, create the container,
#                       wait for a signed request (no-op if already running)
#   azurite.sh stop     stop the server started by `start`
#   azurite.sh status   exit 0 if running and answering, 3 if stopped, 1 otherwise
#   azurite.sh env      print `export ...` lines for the server
#   azurite.sh check    check that conditional Put Blob requests are refused as Azure requires
#
# Settings (environment):
#   STRATA_AZURITE_PORT     blob service port (10000, object_store's default for the emulator)
#   STRATA_AZURITE_DIR      state directory (/tmp/strata-azurite), wiped at start
#   STRATA_AZURITE_TIMEOUT  seconds to wait for readiness (60)
#   STRATA_TEST_BUCKET      container created at start (strata, the S3 servers' bucket name)
#   STRATA_S3_VENV_DIR      where the npm packages are installed (localstack/.venv, in azurite/)
# Needs Node.js >= 20 and npm on the PATH. Account: Azurite's well-known
# development account devstoreaccount1 and its published key. URLs are
# path-style: http://127.0.0.1:PORT/devstoreaccount1/CONTAINER/BLOB.
# Blobs are kept in the state directory and are gone at the next `start`.
set -euo pipefail
S3_NAME=azurite
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT=${STRATA_AZURITE_PORT:-10000}
DIR=${STRATA_AZURITE_DIR:-/tmp/strata-azurite}
TIMEOUT=${STRATA_AZURITE_TIMEOUT:-60}
CONTAINER=$S3_BUCKET
ENDPOINT=http://127.0.0.1:$PORT
MARKER=.strata-azurite
PIDFILE=$DIR/azurite.pid
LOG=$DIR/azurite.log
AZ_PREFIX=$S3_VENV_ROOT/azurite
AZ_BIN=$AZ_PREFIX/node_modules/azurite/dist/src/blob/main.js
# Azurite's development account (the same for every Azurite and for the old
# Azure Storage Emulator; object_store uses it when AZURE_STORAGE_USE_EMULATOR is set).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

node_ok() { # -> true if node >= 20 and npm exist
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'process.exit(parseInt(process.versions.node, 10) >= 20 ? 0 : 1)' >/dev/null 2>&1
}

# node_modules at $AZ_PREFIX from azurite/package.json and its lock file,
# reinstalled when either file or the Node.js version changes.
_install_azurite() {
  local stamp want log
  stamp=$AZ_PREFIX/.strata-requirements
  want=$(cat "$S3_HERE/azurite/package.json" "$S3_HERE/azurite/package-lock.json"; node --version)
  if [ -f "$AZ_BIN" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  rm -rf "$AZ_PREFIX"
  mkdir -p "$AZ_PREFIX"
  cp "$S3_HERE/azurite/package.json" "$S3_HERE/azurite/package-lock.json" "$AZ_PREFIX/"
  log=$S3_VENV_ROOT/azurite-install.log
  if ! (cd "$AZ_PREFIX" && npm ci --omit=dev --no-audit --no-fund) >"$log" 2>&1 </dev/null; then
    tail -n 30 "$log" >&2
    rm -rf "$AZ_PREFIX"
    return 1
  fi
  printf '%s' "$want" >"$stamp"
}

install_packages() {
  local t0
  t0=$(s3_now_ms)
  node_ok || s3_die "Azurite needs Node.js >= 20 and npm on the PATH (found: $(node --version 2>/dev/null || echo no node))"
  if [ ! -f "$AZ_BIN" ]; then s3_log "installing azurite into $AZ_PREFIX (npm ci)"; fi
  mkdir -p "$S3_VENV_ROOT"
  [ -f "$S3_VENV_ROOT/.gitignore" ] || echo '*' >"$S3_VENV_ROOT/.gitignore"
  # its own lock: the npm install may run beside the pip installs of the other scripts
  s3_locked "$S3_VENV_ROOT/.lock-azurite" _install_azurite || s3_die "npm ci of azurite failed (log: $S3_VENV_ROOT/azurite-install.log)"
  s3_log "dependencies ready ($(s3_secs "$t0") s)"
}

# Run the Shared Key request helper against the server.
az_check() { # subcommand args...
  AZURE_STORAGE_ACCOUNT_NAME=$AZ_ACCOUNT AZURE_STORAGE_ACCOUNT_KEY=$AZ_KEY AZURITE_BLOB_STORAGE_URL=$ENDPOINT \
    node "$S3_HERE/azcheck.js" "$@"
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
  az_check ready "$CONTAINER" --timeout "$1" --pid-file "$PIDFILE"
}

start_server() {
  s3_port_busy "$PORT" && s3_die "port 127.0.0.1:$PORT is already in use (set STRATA_AZURITE_PORT)"
  s3_prepare_dir "$DIR" "$MARKER"
  mkdir -p "$DIR/data" "$DIR/home"
  # A clean environment, so settings from the caller's shell (AZURITE_ACCOUNTS,
  # for one) do not leak in. --skipApiVersionCheck: accept the x-ms-version of
  # any client, newer than this Azurite or not. --disableTelemetry: no calls out.
  env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$(dirname "$(command -v node)") \
    HOME="$DIR/home" LANG=C.UTF-8 \
    setsid node "$AZ_BIN" \
      --blobHost 127.0.0.1 --blobPort "$PORT" \
      --location "$DIR/data" \
      --skipApiVersionCheck --disableTelemetry \
      </dev/null >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
}

do_start() {
  node_ok || s3_die "Azurite needs Node.js >= 20 and npm on the PATH (found: $(node --version 2>/dev/null || echo no node))"
  if s3_pid_alive "$PIDFILE"; then
    if wait_ready 15; then
      s3_log "already running on $ENDPOINT, container $CONTAINER"
      return 0
    fi
    s3_log "running but not answering; restarting"
  fi
  # Leftovers of a broken run hold no data worth a clean shutdown.
  export S3_STOP_WAIT=10
  [ -e "$PIDFILE" ] && do_stop
  install_packages
  # As with the other servers: a failed start is reported and stopped, then tried again.
  s3_start_attempts start_server "$TIMEOUT" "no signed request succeeded on $ENDPOINT within $TIMEOUT s" \
    "ready on $ENDPOINT, container $CONTAINER" "Azurite"
}

do_status() {
  if [ ! -e "$PIDFILE" ]; then echo "azurite: stopped"; return 3; fi
  if ! s3_pid_alive "$PIDFILE"; then echo "azurite: not running (stale pid file in $DIR)"; return 1; fi
  if node_ok && wait_ready 5 2>/dev/null; then
    echo "azurite: running on $ENDPOINT (state in $DIR)"
    return 0
  fi
  echo "azurite: process running but the blob service not answering on $ENDPOINT"
  return 1
}

do_check() {
  s3_pid_alive "$PIDFILE" || s3_die "not running; run: $0 start"
  az_check conditional "$CONTAINER"
}

# What object_store's MicrosoftAzureBuilder::from_env() reads: with
# AZURE_STORAGE_USE_EMULATOR it sends requests to AZURITE_BLOB_STORAGE_URL with
# the account as the first path segment, over plain HTTP.
do_env() {
  cat <<EOF
export AZURE_STORAGE_ACCOUNT_NAME=$AZ_ACCOUNT
export AZURE_STORAGE_ACCOUNT_KEY=$AZ_KEY
export AZURE_STORAGE_USE_EMULATOR=true
export AZURITE_BLOB_STORAGE_URL=$ENDPOINT
export AZURE_ALLOW_HTTP=true
export STRATA_AZURITE_ENDPOINT=$ENDPOINT
EOF
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop; s3_log "stopped" ;;
  status) do_status ;;
  env) do_env ;;
  check) do_check ;;
  *) echo "usage: $0 start|stop|status|env|check" >&2; exit 2 ;;
esac
