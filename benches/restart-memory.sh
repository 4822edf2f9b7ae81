#!/usr/bin/env bash
# Restart time and memory per revoked id at scale (default 10M UUID ids).
#
#   benches/restart-memory.sh                      # N=10000000, temp data dir
#   N=1000000 benches/restart-memory.sh
#   DATA=/var/tmp/rescind-10m benches/restart-memory.sh   # keep/reuse a filled dir
#
# 1. `rescind-bench fill` writes N revocations into a data dir through the
#    store, as the node's writer would (skipped if DATA already holds them).
# 2. A node starts on an empty data dir: its RSS is the baseline.
# 3. A node starts on the filled dir, reading every entry from sled (what a
#    start after a crash does): the time from launch until a Check of a
#    revoked id answers `revoked` is the restart time; RSS minus the baseline,
#    over N, is the memory per revoked id (sled's cache included).
# 4. Checks at that size: 50 callers on 4 connections, and CheckBatch x256.
# 5. The node stops cleanly (SIGTERM: it saves a checkpoint of the deny set)
#    and starts again from the checkpoint (a planned restart): timed the same.
# 6. It takes 2 s of durable revokes, is killed with SIGKILL, and starts again:
#    the checkpoint plus a replay of the ops logged since (a crash restart
#    once a checkpoint exists; the node writes one every checkpoint_interval).
# Nodes run with --serve-threads 1 and are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000000}
DURATION=${DURATION:-10s}
echo "building release binaries..." >&2
cargo build --release -q -p rescind-cli -p rescind-benches
BIN=$PWD/target/release

work=$(mktemp -d)
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh
now() { date +%s.%N; }

data=${DATA:-$work/filled}
if [ -d "$data/db" ]; then
  echo "using the revocations already in $data" >&2
else
  echo "filling $data with $N revocations..." >&2
  "$BIN/rescind-bench" fill --data-dir "$data" --count "$N"
fi

start_node() { # data_dir -> sets node_pid, port; waits (bounded) for "listening"
  port=$(free_port)
  "$BIN/rescind" serve --serve-threads 1 --data-dir "$1" --listen "127.0.0.1:$port" --http-listen off --log warn,rescind_node::engine=info \
    >"$work/node.out" 2>"$work/node.log" &
  node_pid=$!
  for _ in $(seq 3600); do
    grep -q listening "$work/node.out" 2>/dev/null && return 0
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "node did not start within 180 s" >&2; exit 1
}
stop_node() { kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""; }
first_check() { # data_dir -> waits for `revoked` on a filled id
  "$BIN/rescind" check --addr "127.0.0.1:$port" --data-dir "$1" --token-id "$hit" --json >"$work/check.json"
  grep -q '"revoked": *true' "$work/check.json" || { echo "a filled id was not revoked: $(cat "$work/check.json")" >&2; exit 1; }
}
rss_kb() { ps -o rss= -p "$node_pid" | tr -d ' '; }

start_node "$work/empty"
"$BIN/rescind" check --addr "127.0.0.1:$port" --data-dir "$work/empty" --token-id warm-up >/dev/null
rss_empty=$(rss_kb)
stop_node

hit=$("$BIN/rescind-bench" ids --count 1)
rm -f "$data/db.deny-checkpoint"   # measure the walk of sled first
echo "starting on $data (reading every entry from sled)..." >&2
t0=$(now)
start_node "$data"
t_listen=$(now)
first_check "$data"
t_check=$(now)
entries=$(grep -o '[0-9]* revoked ids' "$work/node.out" | cut -d' ' -f1)
rss_full=$(rss_kb)

echo "checks against $entries entries..." >&2
single=$("$BIN/rescind-bench" check --addr "127.0.0.1:$port" --data-dir "$data" --preload "$entries" \
  --concurrency 50 --connections 4 --duration "$DURATION" --json)
batch=$("$BIN/rescind-bench" check --addr "127.0.0.1:$port" --data-dir "$data" --preload "$entries" \
  --concurrency 4 --connections 4 --batch 256 --duration "$DURATION" --json)
echo "clean stop (saves a checkpoint), then a planned restart..." >&2
t_stop0=$(now)
stop_node
t_stop=$(now)
[ -f "$data/db.deny-checkpoint" ] || { echo "no checkpoint after a clean stop" >&2; exit 1; }
t1=$(now)
start_node "$data"
first_check "$data"
t_cp=$(now)
rss_cp=$(rss_kb)
echo "2 s of revokes, then kill -9 and a restart from checkpoint + op log..." >&2
"$BIN/rescind-bench" revoke --addr "127.0.0.1:$port" --data-dir "$data" --concurrency 64 --duration 2s >&2
kill -9 "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
t2=$(now)
start_node "$data"
first_check "$data"
t_crash=$(now)
replayed=$(grep -o 'replayed_ops=[0-9]*' "$work/node.log" | cut -d= -f2 || true)
stop_node

python3 - "$entries" "$t0" "$t_listen" "$t_check" "$rss_empty" "$rss_full" "$single" "$batch" \
  "$t_stop0" "$t_stop" "$t1" "$t_cp" "$rss_cp" "$t2" "$t_crash" "${replayed:-?}" <<'PY'
import json, sys
a = sys.argv[1:]
n = int(a[0]); t0, tl, tc = (float(x) for x in a[1:4])
rss0, rss1 = int(a[4]), int(a[5])
single, batch = json.loads(a[6]), json.loads(a[7])
ts0, ts, t1, tcp = (float(x) for x in a[8:12]); rss_cp = int(a[12])
t2, tcrash, replayed = float(a[13]), float(a[14]), a[15]
print()
print(f"revoked ids in the data dir                {n:>14,}")
print(f"start reading sled: launch to listening (s) {tl - t0:>13.2f}")
print(f"start reading sled: launch to first Check (s) {tc - t0:>11.2f}")
print(f"clean stop, checkpoint written (s)         {ts - ts0:>14.2f}")
print(f"planned restart: launch to first Check (s) {tcp - t1:>14.2f}")
print(f"kill -9 restart, checkpoint + {replayed} ops replayed (s) {t2 and tcrash - t2:>7.2f}")
print(f"node RSS empty / after sled / after checkpoint (MiB)  {rss0 / 1024:.0f} / {rss1 / 1024:,.0f} / {rss_cp / 1024:,.0f}")
print(f"memory per revoked id, after sled (bytes)  {(rss1 - rss0) * 1024 / n:>14.1f}")
print(f"memory per revoked id, after checkpoint    {(rss_cp - rss0) * 1024 / n:>14.1f}")
print(f"Check, 50 callers / 4 conns (/s)            {single['per_sec']:>14,.0f}   p99 {single['p99_us'] / 1000:.3f} ms")
print(f"CheckBatch x256, 4 callers (checks/s)      {batch['per_sec']:>14,.0f}   p99 {batch['p99_us'] / 1000:.3f} ms")
PY
