#!/usr/bin/env bash
# Storage at scale (default 10M UUID ids): memory and disk per revoked id,
# start time on every path, and durable revokes with and without a
# checkpoint being written. Redis holds the same ids in the same run.
#
#   benches/restart-memory.sh                      # N=10000000, temp data dir
#   N=1000000 benches/restart-memory.sh
#   DATA=/var/tmp/rescind-10m benches/restart-memory.sh   # keep/reuse a filled dir
#
# 1. `rescind-bench fill` writes N revocations as a node leaves them right
#    after a checkpoint: every op in the log, checkpoint generation 1 holding
#    the state (skipped if DATA already holds a checkpoint).
# 2. Redis: the same N ids in one set (SADD); used_memory over N, and the
#    size of its RDB dump over N.
# 3. A node on an empty data dir: its RSS is the baseline.
# 4. A node on the filled dir (checkpoint read, nothing to replay): launch to
#    the first Check answering `revoked`; RSS minus the baseline over N.
# 5. Durable revokes, 64 callers on 4 connections, with no checkpoint
#    (checkpoints off), then again with checkpoints back to back
#    (--checkpoint-interval 1s): throughput, p99, p99.9.
# 6. Clean stop (a last checkpoint; compaction drops the log below the older
#    kept one), then disk per id: checkpoints + database.
# 7. Planned restart: launch to first Check; RSS.
# 8. 2 s of revokes, kill -9, restart: checkpoint + replay of the log tail.
# 9. A second node on an empty dir pulls a snapshot from the first (adoption
#    checkpoints it), is killed with -9, and starts again: timed the same.
# Nodes run with --serve-threads 1 and are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000000}
DURATION=${DURATION:-10s}
KEY=bench-cluster-key-0123456789
echo "building release binaries..." >&2
cargo build --release -q -p rescind-cli -p rescind-benches
BIN=$PWD/target/release

work=$(mktemp -d)
node_pid=""
redis_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh
now() { date +%s.%N; }

data=${DATA:-$work/filled}
if [ -d "$data/checkpoints" ] && ls "$data/checkpoints"/*.rsc >/dev/null 2>&1; then
  echo "using the revocations already in $data" >&2
else
  echo "filling $data with $N revocations..." >&2
  "$BIN/rescind-bench" fill --data-dir "$data" --count "$N"
fi

# --- Redis, same ids ---------------------------------------------------------
redis_mem_per_id="-"; redis_disk_per_id="-"
if command -v redis-server >/dev/null; then
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  wait_for "redis-server" redis-cli -p "$rport" ping
  redis_mem() { redis-cli -p "$rport" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
  m0=$(redis_mem)
  echo "loading $N ids into a Redis set..." >&2
  "$BIN/rescind-bench" ids --count "$N" \
    | awk '{ printf "*3\r\n$4\r\nSADD\r\n$4\r\ndeny\r\n$%d\r\n%s\r\n", length($0), $0 }' \
    | redis-cli -p "$rport" --pipe >/dev/null
  m1=$(redis_mem)
  redis-cli -p "$rport" save >/dev/null
  rdb=$(stat -c %s "$work/dump.rdb")
  redis_mem_per_id=$(python3 -c "print(f'{($m1 - $m0) / $N:.1f}')")
  redis_disk_per_id=$(python3 -c "print(f'{$rdb / $N:.1f}')")
  kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=""
else
  echo "redis-server not installed: Redis rows left out" >&2
fi

start_node() { # data_dir [flags...] -> sets node_pid, port; waits (bounded) for "listening"
  local dir=$1; shift
  port=$(free_port)
  "$BIN/rescind" serve --serve-threads 1 --data-dir "$dir" --listen "127.0.0.1:$port" --http-listen off \
    --cluster-key "$KEY" --log warn,rescind_node::engine=info,rescind_node::checkpointer=info "$@" \
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
  for _ in $(seq 1200); do
    if "$BIN/rescind" check --addr "127.0.0.1:$port" --data-dir "$1" --token-id "$hit" --json >"$work/check.json" 2>/dev/null \
      && grep -q '"revoked": *true' "$work/check.json"; then return 0; fi
    sleep 0.05
  done
  echo "a filled id was not revoked: $(cat "$work/check.json")" >&2; exit 1
}
rss_kb() { ps -o rss= -p "$node_pid" | tr -d ' '; }
disk_bytes() { du -sb "$1" | cut -f1; }
revokes() { # -> json
  "$BIN/rescind-bench" revoke --addr "127.0.0.1:$port" --data-dir "$data" --concurrency 64 --connections 4 --duration "$1" --json
}

start_node "$work/empty"
"$BIN/rescind" check --addr "127.0.0.1:$port" --data-dir "$work/empty" --token-id warm-up >/dev/null
rss_empty=$(rss_kb)
stop_node

hit=$("$BIN/rescind-bench" ids --count 1)
echo "starting on $data (checkpoint, nothing to replay)..." >&2
t0=$(now)
start_node "$data" --checkpoint-interval 0s --checkpoint-ops 0
first_check "$data"
t_first=$(now)
rss_first=$(rss_kb)
echo "durable revokes, no checkpoint running..." >&2
rev_plain=$(revokes "$DURATION")
stop_node
echo "durable revokes, checkpoints back to back..." >&2
start_node "$data" --checkpoint-interval 1s --checkpoint-ops 0
first_check "$data"
rev_cp=$(revokes "$DURATION")
checkpoints_during=$(grep -c "checkpoint saved" "$work/node.log" || true)
cp_ms=$(grep -o 'ms=[0-9]*' <(grep "checkpoint saved" "$work/node.log") | cut -d= -f2 | sort -n | tail -1 || echo "?")
echo "clean stop (last checkpoint, compaction)..." >&2
t_stop0=$(now)
stop_node
t_stop=$(now)
disk_cp=$(disk_bytes "$data/checkpoints")
disk_db=$(disk_bytes "$data/db")
echo "planned restart..." >&2
t1=$(now)
start_node "$data"
first_check "$data"
t_planned=$(now)
rss_planned=$(rss_kb)
entries=$("$BIN/rescind" status --addr "127.0.0.1:$port" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["deny_entries"])')
echo "2 s of revokes, then kill -9 and a restart from checkpoint + log tail..." >&2
revokes 2s >/dev/null
kill -9 "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
t2=$(now)
start_node "$data"
first_check "$data"
t_crash=$(now)
replayed=$(grep -o 'replayed_ops=[0-9]*' "$work/node.log" | tail -1 | cut -d= -f2 || true)
a_port=$port; a_pid=$node_pid; node_pid=""
echo "a second node adopts a snapshot from the first..." >&2
t3=$(now)
start_node "$work/second" --peer "127.0.0.1:$a_port"
first_check "$work/second"
t_adopted=$(now)
for _ in $(seq 1200); do
  grep -q "checkpoint saved" "$work/node.log" && break; sleep 0.1
done
kill -9 "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
kill "$a_pid"; wait "$a_pid" 2>/dev/null || true
t4=$(now)
start_node "$work/second"
first_check "$work/second"
t_after_adopt=$(now)
stop_node

python3 - "$N" "$entries" "$rss_empty" "$rss_first" "$rss_planned" "$disk_cp" "$disk_db" \
  "$t0" "$t_first" "$t_stop0" "$t_stop" "$t1" "$t_planned" "$t2" "$t_crash" "${replayed:-?}" \
  "$t3" "$t_adopted" "$t4" "$t_after_adopt" "$rev_plain" "$rev_cp" "$checkpoints_during" "${cp_ms:-?}" \
  "$redis_mem_per_id" "$redis_disk_per_id" <<'PY'
import json, sys
a = sys.argv[1:]
n, entries = int(a[0]), int(a[1])
rss0, rss_first, rss_planned, disk_cp, disk_db = (int(x) for x in a[2:7])
t0, tf, ts0, ts, t1, tp, t2, tc = (float(x) for x in a[7:15]); replayed = a[15]
t3, ta, t4, taa = (float(x) for x in a[16:20])
plain, cp = json.loads(a[20]), json.loads(a[21]); ncp, cp_ms = a[22], a[23]
redis_mem, redis_disk = a[24], a[25]
print()
print(f"revoked ids (fill / after the revoke runs)        {n:>12,} / {entries:,}")
print(f"memory per id after the first start (B)            {(rss_first - rss0) * 1024 / n:>10.1f}   Redis SADD: {redis_mem}")
print(f"memory per id after a planned restart (B)          {(rss_planned - rss0) * 1024 / entries:>10.1f}")
print(f"disk per id after compaction (B)                   {(disk_cp + disk_db) / entries:>10.1f}   Redis RDB: {redis_disk}")
print(f"  of which checkpoints (2 generations) / database  {disk_cp / entries:>10.1f} / {disk_db / entries:.1f}")
print(f"start: first start on the filled dir (s)           {tf - t0:>10.2f}")
print(f"start: planned restart (s)                         {tp - t1:>10.2f}")
print(f"start: kill -9, checkpoint + {replayed} ops replayed (s) {tc - t2:>8.2f}")
print(f"start: after snapshot adoption, kill -9 (s)        {taa - t4:>10.2f}   (adoption took {ta - t3:.1f} s)")
print(f"clean stop incl. last checkpoint (s)               {ts - ts0:>10.2f}")
def rev(label, r):
    print(f"{label:<50} {r['per_sec']:>10,.0f}/s   p99 {r['p99_us'] / 1000:.2f} ms   p99.9 {r['p999_us'] / 1000:.2f} ms")
rev("durable revokes, 64 callers / 4 conns, no checkpoint", plain)
rev(f"  same, checkpoints back to back ({ncp}, longest {cp_ms} ms)", cp)
PY
