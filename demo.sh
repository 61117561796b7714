#!/usr/bin/env bash
# Strata's main job end to end, on this machine alone: a repository, a change, history,
# and time travel. Run from anywhere: ./demo.sh  (builds strata first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cargo build -q --release -p strata-cli --manifest-path "$here/Cargo.toml"
strata() { "$here/target/release/strata" "$@"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export STRATA_AUTHOR="Demo <demo@example.com>"
step() { printf '\n\033[1m$ strata %s\033[0m\n' "$*"; strata "$@"; }

# A sample data set: 100,000 orders.
awk 'BEGIN { print "order_id,customer,amount,status";
  for (i = 1; i <= 100000; i++) printf "%d,cust%04d,%.2f,%s\n", i, (i * 7919) % 5000, (i * 37 % 10000) / 100, (i % 3 ? "open" : "shipped") }' > orders.csv

mkdir analyst && cd analyst
step init
step import orders ../orders.csv --primary-key order_id
step commit -m "Import 100k orders"

# Ship two orders, cancel one, add one.
printf 'order_id,customer,amount,status\n10,cust0790,3.70,shipped\n20,cust3380,7.40,shipped\n100001,cust0001,99.99,open\n' > ../changes.csv
printf 'order_id\n30\n' > ../cancel.csv
step import orders ../changes.csv --mode upsert
step delete orders --keys ../cancel.csv
step status
step commit -m "Ship 10 and 20, cancel 30, add 100001"
step log --oneline
step show HEAD

# Time travel: any revision exports at full speed, in key order.
step export orders ../now.csv
step export orders ../before.csv --rev HEAD~1
printf '\n\033[1m$ diff before.csv now.csv\033[0m\n'
diff ../before.csv ../now.csv || true
step tag v1 HEAD~1
step checkout v1
step table show orders
step checkout main
echo
echo "Done: the repository is in $work/analyst (removed on exit)."
