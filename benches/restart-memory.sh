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
# 3. A node starts on the filled dir: the time from launch until a Check of a
#    revoked id answers `revoked` is the restart time; RSS minus the baseline,
#    over N, is the memory per revoked id (sled's cache included).
# 4. Checks at that size: 50 callers on 4 connections, and CheckBatch x256.
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
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
  "$BIN/rescind" serve --serve-threads 1 --data-dir "$1" --listen "127.0.0.1:$port" --log warn \
    >"$work/node.out" 2>"$work/node.log" &
  node_pid=$!
  for _ in $(seq 1200); do
    grep -q listening "$work/node.out" 2>/dev/null && return 0
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "node did not start within 60 s" >&2; exit 1
}
stop_node() { kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""; }
rss_kb() { ps -o rss= -p "$node_pid" | tr -d ' '; }

start_node "$work/empty"
"$BIN/rescind" check --addr "127.0.0.1:$port" --data-dir "$work/empty" --token-id warm-up >/dev/null
rss_empty=$(rss_kb)
stop_node

hit=$("$BIN/rescind-bench" ids --count 1)
t0=$(now)
start_node "$data"
t_listen=$(now)
"$BIN/rescind" check --addr "127.0.0.1:$port" --data-dir "$data" --token-id "$hit" --json >"$work/check.json"
t_check=$(now)
grep -q '"revoked": *true' "$work/check.json" || { echo "a filled id was not revoked: $(cat "$work/check.json")" >&2; exit 1; }
entries=$(grep -o '[0-9]* revoked ids' "$work/node.out" | cut -d' ' -f1)
rss_full=$(rss_kb)

echo "checks against $entries entries..." >&2
single=$("$BIN/rescind-bench" check --addr "127.0.0.1:$port" --data-dir "$data" --preload "$entries" \
  --concurrency 50 --connections 4 --duration "$DURATION" --json)
batch=$("$BIN/rescind-bench" check --addr "127.0.0.1:$port" --data-dir "$data" --preload "$entries" \
  --concurrency 4 --connections 4 --batch 256 --duration "$DURATION" --json)
stop_node

python3 - "$entries" "$t0" "$t_listen" "$t_check" "$rss_empty" "$rss_full" "$single" "$batch" <<'PY'
import json, sys
n = int(sys.argv[1]); t0, tl, tc = (float(x) for x in sys.argv[2:5])
rss0, rss1 = int(sys.argv[5]), int(sys.argv[6])
single, batch = json.loads(sys.argv[7]), json.loads(sys.argv[8])
print()
print(f"revoked ids in the data dir            {n:>14,}")
print(f"restart: launch to listening (s)       {tl - t0:>14.2f}")
print(f"restart: launch to first Check (s)     {tc - t0:>14.2f}")
print(f"node RSS empty / loaded (MiB)          {rss0 / 1024:>6.0f} / {rss1 / 1024:,.0f}")
print(f"memory per revoked id (bytes)          {(rss1 - rss0) * 1024 / n:>14.1f}")
print(f"Check, 50 callers / 4 conns (/s)       {single['per_sec']:>14,.0f}   p99 {single['p99_us'] / 1000:.3f} ms")
print(f"CheckBatch x256, 4 callers (checks/s)  {batch['per_sec']:>14,.0f}   p99 {batch['p99_us'] / 1000:.3f} ms")
PY
