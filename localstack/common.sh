# Shared settings and functions for radosgw.sh, localstack.sh and all.sh.
# Sourced, not executed.

S3_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# One set of test credentials for every server.
S3_ACCESS_KEY=${STRATA_S3_ACCESS_KEY:-strata}
S3_SECRET_KEY=${STRATA_S3_SECRET_KEY:-stratasecret}
S3_REGION=${STRATA_S3_REGION:-us-east-1}
S3_BUCKET=${STRATA_TEST_BUCKET:-strata}
S3_VENV_ROOT=${STRATA_S3_VENV_DIR:-$S3_HERE/.venv}
S3_TOOLS_VENV=$S3_VENV_ROOT/tools

s3_log() { echo "$S3_NAME: $*" >&2; }
s3_die() { echo "$S3_NAME: error: $*" >&2; exit 1; }

# Monotonic-enough wall clock in milliseconds.
s3_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
s3_secs() { # start_ms -> "12.3"
  local d=$(( $(s3_now_ms) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

# True when something accepts TCP connections on 127.0.0.1:$1.
s3_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True while process $1 exists and is not a zombie waiting to be reaped.
s3_proc_running() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

s3_pid_alive() { # pid file
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && s3_proc_running "$pid"
}

# Stop the processes named by pid files: TERM to all, wait up to
# S3_STOP_WAIT tenths of a second (default 100), then KILL.
s3_stop_pids() {
  local f pid i live=()
  for f in "$@"; do
    if [ -s "$f" ]; then
      pid=$(cat "$f")
      if [ -n "$pid" ] && s3_proc_running "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        live+=("$pid")
      fi
    fi
  done
  for i in $(seq 1 "${S3_STOP_WAIT:-100}"); do
    [ ${#live[@]} -gt 0 ] || break
    local still=()
    for pid in "${live[@]}"; do s3_proc_running "$pid" && still+=("$pid"); done
    live=(${still[@]+"${still[@]}"})
    [ ${#live[@]} -gt 0 ] || break
    sleep 0.1
  done
  for pid in ${live[@]+"${live[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  [ ${#live[@]} -gt 0 ] && sleep 0.2
  rm -f "$@"
}

# Run a command while holding an exclusive lock (serialises installs when
# the servers are started in parallel).
s3_locked() { # lockfile cmd...
  local lock=$1; shift
  if ! command -v flock >/dev/null 2>&1; then "$@"; return; fi
  mkdir -p "$(dirname "$lock")"
  (
    flock -w 900 9 || { echo "$S3_NAME: error: timed out waiting for $lock" >&2; exit 1; }
    "$@"
  ) 9>"$lock"
}

_s3_apt_install() {
  local log=/tmp/strata-s3-apt.log
  export DEBIAN_FRONTEND=noninteractive
  local opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)
  if apt-get install "${opts[@]}" "$@" >"$log" 2>&1 </dev/null; then
    return 0
  fi
  apt-get update -q -o DPkg::Lock::Timeout=600 >>"$log" 2>&1 </dev/null || { tail -n 20 "$log" >&2; return 1; }
  apt-get install "${opts[@]}" "$@" >>"$log" 2>&1 </dev/null || { tail -n 20 "$log" >&2; return 1; }
}
# Install Debian packages (apt-get update runs only if the first attempt fails).
s3_apt_install() {
  s3_locked /tmp/strata-s3-apt.lock _s3_apt_install "$@"
}

# A Python that can make a venv: the first python3 on PATH, else Debian's.
s3_base_python() {
  local c
  for c in "${STRATA_S3_PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

# A venv at $2, made with python $1, with the packages named by the pip arguments after them.
# With STRATA_UV naming a uv binary (test.sh installs one), uv installs them: it downloads in
# parallel and unpacks each package once into its cache for every venv, where pip took a few
# times the CPU time per venv. Without it, pip does.
s3_venv_install() { # python venv pip-args...
  local py=$1 venv=$2; shift 2
  if [ -n "${STRATA_UV:-}" ] && [ -x "$STRATA_UV" ]; then
    "$py" -m venv --without-pip "$venv" &&
      "$STRATA_UV" pip install -q --python "$venv/bin/python" "$@"
  else
    "$py" -m venv "$venv" &&
      "$venv/bin/python" -m pip install -q --no-compile --disable-pip-version-check "$@"
  fi
}

# venv at $1 with the packages of requirements file $2 (and constraints $3),
# made with python $4; rebuilt when the requirement files change.
_s3_make_venv() {
  local venv=$1 req=$2 cons=$3 py=$4 stamp want
  stamp=$venv/.strata-requirements
  want=$(cat "$req" "$cons"; "$py" -c 'import sys; print(sys.version)')
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  local log; log=$(dirname "$venv")/$(basename "$venv")-install.log
  if ! { s3_venv_install "$py" "$venv" -r "$req" -c "$cons"; } >"$log" 2>&1 </dev/null; then
    tail -n 30 "$log" >&2
    rm -rf "$venv"
    return 1
  fi
  printf '%s' "$want" >"$stamp"
}
s3_make_venv() {
  mkdir -p "$S3_VENV_ROOT"
  # generated files: keep them out of version control
  [ -f "$S3_VENV_ROOT/.gitignore" ] || echo '*' >"$S3_VENV_ROOT/.gitignore"
  s3_locked "$S3_VENV_ROOT/.lock" _s3_make_venv "$@"
}

# venv with boto3 for the signed-request helper.
s3_tools_venv() {
  local py
  if ! py=$(s3_base_python); then
    s3_apt_install python3 python3-venv || s3_die "could not install python3-venv"
    py=$(s3_base_python) || s3_die "no usable python3 found"
  fi
  s3_make_venv "$S3_TOOLS_VENV" "$S3_HERE/requirements-tools.txt" "$S3_HERE/constraints-tools.txt" "$py" ||
    s3_die "could not install boto3 into $S3_TOOLS_VENV"
}

# Run the signed-request helper against a server.
s3_check() { # endpoint subcommand args...
  local endpoint=$1; shift
  AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY \
  AWS_REGION=$S3_REGION AWS_DEFAULT_REGION=$S3_REGION AWS_ENDPOINT_URL=$endpoint \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    "$S3_TOOLS_VENV/bin/python" "$S3_HERE/s3check.py" "$@"
}

s3_print_env() { # endpoint
  cat <<EOF
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_REGION=$S3_REGION
export AWS_DEFAULT_REGION=$S3_REGION
export AWS_ENDPOINT_URL=$1
export AWS_ALLOW_HTTP=true
export STRATA_TEST_BUCKET=$S3_BUCKET
EOF
}

# Print the last lines of every log in a directory.
s3_tail_logs() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 15 "$f" >&2
  done
}

# Refuse to wipe a directory this tool did not create.
s3_prepare_dir() { # dir marker
  local dir=$1 marker=$2
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ ! -f "$dir/$marker" ]; then
    s3_die "$dir exists and was not made by this script; choose another directory"
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  : >"$dir/$marker"
}

# Starts a server in up to 3 attempts: START_FN starts it, then `wait_ready
# TIMEOUT` (the script's own) waits for it to answer, or `fail NOT_READY` (the
# script's own: it prints the log tails and stops what started) reports it. A
# failed attempt is followed by a fresh one; after the third the script exits.
s3_start_attempts() { # start_fn timeout not_ready_message ready_message server_name
  local attempt t0
  for attempt in 1 2 3; do
    t0=$(s3_now_ms)
    if ("$1" && { wait_ready "$2" || fail "$3"; }); then
      s3_log "$4 (start took $(s3_secs "$t0") s)"
      return 0
    fi
    [ "$attempt" -lt 3 ] && s3_log "start attempt $attempt failed after $(s3_secs "$t0") s; starting again"
  done
  s3_die "$5 did not start in 3 attempts (see above)"
}
