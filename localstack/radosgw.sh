#!/bin/bash
# Ceph radosgw (S3) on 127.0.0.1: a single-node Ceph cluster (one monitor,
# one OSD with the in-memory object store) plus radosgw, no Docker, no systemd.
#
#   radosgw.sh start    install what is missing, start, create user and bucket,
#                       wait for a signed S3 request (no-op if already running)
#   radosgw.sh stop     stop the processes started by `start`
#   radosgw.sh status   exit 0 if running and answering, 3 if stopped, 1 otherwise
#   radosgw.sh env      print `export ...` lines for the server
#   radosgw.sh check    check that conditional PUTs are refused as S3 requires
#
# Settings (environment):
#   STRATA_RADOSGW_PORT      S3 port (7480)
#   STRATA_RADOSGW_DIR       state directory (/tmp/strata-radosgw), wiped at start
#   STRATA_RADOSGW_MON_PORT  monitor msgr2 port (3300); msgr1 uses STRATA_RADOSGW_MON_V1_PORT (6789)
#   STRATA_RADOSGW_TIMEOUT   seconds to wait for readiness (120)
#   STRATA_TEST_BUCKET       bucket created at start (strata)
#   STRATA_S3_ACCESS_KEY / STRATA_S3_SECRET_KEY / STRATA_S3_REGION  (strata / stratasecret / us-east-1)
# The OSD also listens on 127.0.0.1 in the range 6800-7300. Data lives in the
# OSD's memory (2 GiB cap) and is gone after `stop`.
set -euo pipefail
S3_NAME=radosgw
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT=${STRATA_RADOSGW_PORT:-7480}
DIR=${STRATA_RADOSGW_DIR:-/tmp/strata-radosgw}
MON_PORT=${STRATA_RADOSGW_MON_PORT:-3300}
MON_V1_PORT=${STRATA_RADOSGW_MON_V1_PORT:-6789}
TIMEOUT=${STRATA_RADOSGW_TIMEOUT:-120}
ENDPOINT=http://127.0.0.1:$PORT
MARKER=.strata-radosgw
PIDS=("$DIR/rgw.pid" "$DIR/osd.pid" "$DIR/mon.pid")
LOGS=("$DIR/log/client.rgw.strata.log" "$DIR/log/rgw.out" "$DIR/log/osd.0.log" "$DIR/log/osd.out" "$DIR/log/mon.a.log" "$DIR/log/mon.out")

all_alive() {
  local f
  for f in "${PIDS[@]}"; do s3_pid_alive "$f" || return 1; done
}
any_pid_file() {
  local f
  for f in "${PIDS[@]}"; do [ -e "$f" ] && return 0; done
  return 1
}

do_stop() {
  # radosgw first: it shuts down slowly once the cluster under it is gone
  s3_stop_pids "$DIR/rgw.pid"
  s3_stop_pids "$DIR/osd.pid" "$DIR/mon.pid"
}

install_packages() {
  local t0 missing=()
  t0=$(s3_now_ms)
  command -v ceph-mon >/dev/null || missing+=(ceph-mon)
  command -v ceph-osd >/dev/null || missing+=(ceph-osd)
  command -v radosgw >/dev/null || missing+=(radosgw)
  command -v ceph >/dev/null && command -v ceph-authtool >/dev/null && command -v monmaptool >/dev/null ||
    missing+=(ceph-common)
  if [ ${#missing[@]} -gt 0 ]; then
    s3_log "installing Debian packages: ${missing[*]}"
    s3_apt_install "${missing[@]}" || s3_die "apt-get install ${missing[*]} failed"
    s3_log "packages installed in $(s3_secs "$t0") s"
  fi
  if [ ! -x "$S3_TOOLS_VENV/bin/python" ]; then s3_log "creating $S3_TOOLS_VENV (boto3)"; fi
  s3_tools_venv
  s3_log "dependencies ready ($(s3_secs "$t0") s)"
}

write_conf() {
  local fsid=$1
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]
auth cluster required = none
auth service required = none
auth client required = none
# radosgw asks for "secure" monitor sessions by default, which auth "none" cannot give.
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
keyring = $DIR/keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd data = $DIR/osd/\$id
osd max object name len = 460
osd max object namespace len = 64
mon data = $DIR/mon/\$id
# The monitor refuses to start when its disk has less than 5% free (13 GiB of a 252 GiB
# disk); this cluster keeps a few MiB there (its OSD keeps data in memory): refuse at 1%.
mon data avail crit = 1
mon data avail warn = 2
# commit monitor map changes at once instead of batching them for 1 s
# (radosgw creates several pools on its first start)
paxos propose interval = 0.01
paxos min wait = 0.001
# Errors only. At Ceph's default levels (1/5 and 0/5) every request logs three lines and
# formats dozens of debug messages into an in-memory ring: a large part of the servers' CPU
# in a test run, where they share two cores with the tests.
debug rgw = 0/0
debug ms = 0/0
debug objecter = 0/0
debug rados = 0/0
debug monc = 0/0
debug auth = 0/0
debug osd = 0/0
debug memstore = 0/0
debug objclass = 0/0
debug filestore = 0/0
debug bluestore = 0/0
debug journal = 0/0
debug mon = 0/0
debug paxos = 0/0
debug context = 0/0
debug asok = 0/0
debug finisher = 0/0
debug throttle = 0/0
debug crush = 0/0
debug optracker = 0/0
debug heartbeatmap = 0/0
debug perfcounter = 0/0
debug timer = 0/0
debug lockdep = 0/0
debug buffer = 0/0
debug striper = 0/0
debug civetweb = 0/0
debug rgw sync = 0/0
debug rgw datacache = 0/0
debug rgw access = 0/0
debug rocksdb = 0/0

[client.rgw.strata]
ms mon client mode = crc
# tcp_nodelay: without it small GETs wait on delayed ACKs (~40 ms each).
# radosgw's first requests may go out before the OSD is up; it resends them
# on its objecter tick (default every 5 s)
objecter tick interval = 0.5
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $DIR/rgw
# overwritten objects go to garbage collection after 60 s instead of 2 h
rgw gc obj min wait = 60
EOF
}

start_cluster() {
  local p
  for p in "$PORT" "$MON_PORT" "$MON_V1_PORT"; do
    s3_port_busy "$p" && s3_die "port 127.0.0.1:$p is already in use (set STRATA_RADOSGW_PORT / STRATA_RADOSGW_MON_PORT / STRATA_RADOSGW_MON_V1_PORT)"
  done
  s3_prepare_dir "$DIR" "$MARKER"
  mkdir -p "$DIR"/{mon/a,osd/0,run,log,rgw}
  local fsid osd_uuid id
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"
  export CEPH_CONF=$DIR/ceph.conf
  cd "$DIR"
  timeout 30 monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]" --fsid "$fsid" monmap >log/setup.out 2>&1 ||
    fail "monmaptool failed"
  timeout 30 ceph-authtool --create-keyring keyring --gen-key -n mon. --cap mon 'allow *' >>log/setup.out 2>&1 ||
    fail "ceph-authtool failed"
  timeout 60 ceph-mon --mkfs -i a --monmap monmap --keyring keyring >>log/setup.out 2>&1 || fail "ceph-mon --mkfs failed"
  setsid ceph-mon -i a -f </dev/null >log/mon.out 2>&1 &
  echo $! >mon.pid
  wait_mon
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  id=$(timeout 60 ceph osd new "$osd_uuid" 2>>log/setup.out) || { describe_mon; fail "the monitor did not answer"; }
  timeout 60 ceph-osd -i "$id" --mkfs --osd-uuid "$osd_uuid" >log/osd-mkfs.out 2>&1 || fail "ceph-osd --mkfs failed"
  timeout 30 ceph osd crush add-bucket localhost host >>log/setup.out 2>&1 || fail "crush add-bucket failed"
  timeout 30 ceph osd crush move localhost root=default >>log/setup.out 2>&1 || fail "crush move failed"
  timeout 30 ceph osd crush add "osd.$id" 1.0 host=localhost >>log/setup.out 2>&1 || fail "crush add failed"
  setsid ceph-osd -i "$id" -f </dev/null >log/osd.out 2>&1 &
  echo $! >osd.pid
  setsid radosgw -n client.rgw.strata -f </dev/null >log/rgw.out 2>&1 &
  echo $! >rgw.pid
  # radosgw creates its pools and zone on first start; wait for its HTTP port
  # before creating the user so the two do not race.
  local i
  for i in $(seq 1 $((TIMEOUT * 5))); do
    s3_port_busy "$PORT" && break
    all_alive || fail "a Ceph process exited during startup"
    sleep 0.2
  done
  s3_port_busy "$PORT" || fail "radosgw did not open 127.0.0.1:$PORT within $TIMEOUT s"
  timeout 60 radosgw-admin user create --uid=strata --display-name=strata \
    --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >>log/setup.out 2>&1 ||
    fail "radosgw-admin user create failed"
  # A second user that owns nothing: tests use it to see "permission denied".
  timeout 60 radosgw-admin user create --uid=outsider --display-name=outsider \
    --access-key=outsider --secret-key=outsidersecret >>log/setup.out 2>&1 ||
    fail "radosgw-admin user create (outsider) failed"
}

# Wait until the monitor listens on both of its ports.
wait_mon() {
  local i
  for i in $(seq 1 150); do
    s3_pid_alive "$DIR/mon.pid" || fail "ceph-mon exited during startup"
    s3_port_busy "$MON_PORT" && s3_port_busy "$MON_V1_PORT" && return 0
    sleep 0.2
  done
  describe_mon
  fail "ceph-mon did not open 127.0.0.1:$MON_PORT and :$MON_V1_PORT within 30 s"
}

# What the monitor process is doing, for a start that hangs.
describe_mon() {
  local pid
  pid=$(cat "$DIR/mon.pid" 2>/dev/null) || return 0
  echo "----- ceph-mon (pid $pid) -----" >&2
  ps -o pid,stat,etime,time,wchan:30,args -p "$pid" >&2 2>/dev/null || echo "(not running)" >&2
  grep -E '^(State|Threads)' "/proc/$pid/status" >&2 2>/dev/null || true
  ss -ltn 2>/dev/null | grep -E ":($MON_PORT|$MON_V1_PORT) " >&2 || true
}

fail() {
  echo "$S3_NAME: error: $*" >&2
  s3_tail_logs "$DIR/log/setup.out" "${LOGS[@]}"
  do_stop
  exit 1
}

wait_ready() { # timeout
  s3_check "$ENDPOINT" ready "$S3_BUCKET" --timeout "$1" "${PIDS[@]/#/--pid-file=}"
}

do_start() {
  [ -x "$S3_TOOLS_VENV/bin/python" ] || s3_tools_venv
  if all_alive; then
    if wait_ready 15; then
      s3_log "already running on $ENDPOINT, bucket $S3_BUCKET"
      return 0
    fi
    s3_log "running but not answering; restarting"
  fi
  # Leftovers of a broken run hold no data worth a clean shutdown.
  export S3_STOP_WAIT=10
  any_pid_file && do_stop
  install_packages
  # A Ceph start now and then hangs (a monitor that never answers was seen on
  # a loaded machine): each attempt starts a fresh cluster, and a failed one
  # is stopped and reported before the next.
  s3_start_attempts start_cluster "$TIMEOUT" "no signed S3 request succeeded on $ENDPOINT within $TIMEOUT s" \
    "ready on $ENDPOINT, bucket $S3_BUCKET" "radosgw"
}

do_status() {
  if ! any_pid_file; then echo "radosgw: stopped"; return 3; fi
  if ! all_alive; then echo "radosgw: not running (stale pid files in $DIR)"; return 1; fi
  if [ -x "$S3_TOOLS_VENV/bin/python" ] && wait_ready 5 2>/dev/null; then
    echo "radosgw: running on $ENDPOINT (state in $DIR)"
    return 0
  fi
  echo "radosgw: processes running but S3 not answering on $ENDPOINT"
  return 1
}

do_check() {
  all_alive || s3_die "not running; run: $0 start"
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
