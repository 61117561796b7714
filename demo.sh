#!/usr/bin/env bash
# Strata's main job end to end on this machine: a repository, a file remote, two clones
# exchanging changes, a merge, history and time travel, and the remote read in place. Run from
# anywhere: ./demo.sh  (builds strata first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The demo profile (Cargo.toml): a quicker first build than --release.
cargo build -q --profile demo -p strata-cli --manifest-path "$here/Cargo.toml"
bin=${CARGO_TARGET_DIR:-$here/target}/demo/strata
strata() { "$bin" "$@"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export STRATA_AUTHOR="Demo <demo@example.com>"
# A script's output is not paged, even on a terminal.
export STRATA_PAGER=cat
step() { printf '\n\033[1m$ strata %s\033[0m\n' "$*"; strata "$@"; }

# A sample data set: 100,000 orders.
awk 'BEGIN { print "order_id,customer,amount,status";
  for (i = 1; i <= 100000; i++) printf "%d,cust%04d,%.2f,%s\n", i, (i * 7919) % 5000, (i * 37 % 10000) / 100, (i % 3 ? "open" : "shipped") }' > orders.csv

mkdir analyst && cd analyst
step init
step import orders ../orders.csv --primary-key order_id
step commit -m "Import 100k orders"

# Share it through a remote: here a folder, the same protocol as S3.
step remote add origin ../shared-remote
step push --create -u origin main

# A second machine clones it and ships two orders, cancels one, adds one.
cd .. && step clone shared-remote warehouse && cd warehouse
printf 'order_id,customer,amount,status\n10,cust0790,3.70,shipped\n20,cust3380,7.40,shipped\n100001,cust0001,99.99,open\n' > ../changes.csv
printf 'order_id\n30\n' > ../cancel.csv
step import orders ../changes.csv --mode upsert
step delete orders --keys ../cancel.csv
step status
step commit -m "Ship 10 and 20, cancel 30, add 100001"
step push

# Meanwhile the analyst fixes an amount; pulling merges both changes, cell by cell.
cd ../analyst
printf 'order_id,customer,amount,status\n40,cust1760,41.80,open\n' > ../fix.csv
step import orders ../fix.csv --mode upsert
step commit -m "Fix the amount of order 40"
step status
step pull
step log --oneline
step diff HEAD~2 HEAD

# Time travel: any revision exports at full speed, in key order.
step export orders ../before.csv --rev HEAD~2
step export orders ../now.csv
printf '\n\033[1m$ diff before.csv now.csv\033[0m\n'
diff ../before.csv ../now.csv || true
step push
step tag v1 HEAD~2
step checkout v1
step table show orders
step checkout main
step fsck --remote origin
# Garbage collection: nothing here is unreachable yet; a deleted branch's objects would be freed.
step gc --remote origin --dry-run

# Anyone can read the shared remote where it lies: from any folder, with no clone.
cd "$work"
step log --oneline -n 3 --remote shared-remote
step diff main~1 main --stat --remote shared-remote
echo
echo "Done: the repositories are in $work (removed on exit)."
