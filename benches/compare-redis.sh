#!/usr/bin/env bash
# Rescind vs a Redis deny list, side by side on this machine, in one run.
#
#   benches/compare-redis.sh                 # 1M ids, 10 s per Rescind measurement
#   N=200000 DURATION=5s benches/compare-redis.sh
#
# Installs redis-server / redis-tools from Debian if missing, starts Redis
# (loopback, free port, no persistence) and a Rescind node (loopback, free
# port, temporary data dir), loads the same N ids into both, then runs
# `redis-benchmark SISMEMBER` and `rescind-bench check` at 50 and 1 clients
# (one request in flight per client, no pipelining) and prints one table.
#
# Like for like: Redis serves on one thread and redis-benchmark loads on one,
# so the node serves on one thread (--serve-threads 1) and rescind-bench loads
# on one (--threads 1). Redis needs a connection per client without
# pipelining; gRPC callers share HTTP/2 connections, so the main Rescind row
# spreads 50 callers over CONNS (default 4) connections, and a second row
# gives them one connection each.
# Then a `rescind edge` (one serving thread) follows the node and the same
# Check load runs against it: the edge rows.
# Every server is stopped by PID at the end. The last line is
#   throughput ratio rescind/redis at 50 clients: X.XX
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
DURATION=${DURATION:-10s}
REQS=${REQS:-500000}
CONNS=${CONNS:-4}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "installing redis-server and redis-tools from Debian..." >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q redis-server redis-tools >/dev/null
fi
echo "building release binaries..." >&2
cargo build --release -q -p rescind-cli -p rescind-benches
BIN=target/release

work=$(mktemp -d)
redis_pid=""
node_pid=""
edge_pid=""
cleanup() {
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  [ -n "$edge_pid" ] && kill "$edge_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh

# --- Redis -----------------------------------------------------------------
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_for "redis-server" redis-cli -p "$rport" ping
redis_mem() { redis-cli -p "$rport" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
mem0=$(redis_mem)
echo "loading $N ids into a Redis set..." >&2
"$BIN/rescind-bench" ids --count "$N" \
  | awk '{ printf "*3\r\n$4\r\nSADD\r\n$4\r\ndeny\r\n$%d\r\n%s\r\n", length($0), $0 }' \
  | redis-cli -p "$rport" --pipe >/dev/null
mem1=$(redis_mem)
hit=$("$BIN/rescind-bench" ids --count 1)
redis_run() { # clients requests -> "rps p50_ms p99_ms"
  redis-benchmark -p "$rport" -c "$1" -n "$2" --csv SISMEMBER deny "$hit" \
    | python3 -c 'import csv,sys; rows=list(csv.reader(sys.stdin)); h=rows[0]; r=rows[-1]; d=dict(zip(h,r)); print(d["rps"], d["p50_latency_ms"], d["p99_latency_ms"])'
}
echo "redis-benchmark SISMEMBER, 50 clients..." >&2
read -r r50_rps r50_p50 r50_p99 <<<"$(redis_run 50 "$REQS")"
echo "redis-benchmark SISMEMBER, 1 client..." >&2
read -r r1_rps r1_p50 r1_p99 <<<"$(redis_run 1 $((REQS / 5)))"
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=""

# --- Rescind ---------------------------------------------------------------
nport=$(free_port)
"$BIN/rescind" serve --serve-threads 1 --data-dir "$work/data" --listen "127.0.0.1:$nport" --http-listen off --log warn >"$work/node.out" 2>"$work/node.log" &
node_pid=$!
wait_for "rescind node" grep -q listening "$work/node.out"
rss() { ps -o rss= -p "$node_pid" | tr -d ' '; }
rss0=$(rss)
echo "preloading $N revocations into Rescind (durable revokes, 64 in flight)..." >&2
"$BIN/rescind-bench" check --addr "127.0.0.1:$nport" --data-dir "$work/data" --preload "$N" \
  --concurrency 1 --connections 1 --duration 100ms >/dev/null
rss1=$(rss)
bench() { # clients connections [addr] -> "rps p50_ms p99_ms"
  "$BIN/rescind-bench" --threads 1 check --addr "${3:-127.0.0.1:$nport}" --data-dir "$work/data" --preload "$N" \
    --concurrency "$1" --connections "$2" --duration "$DURATION" --hit-ratio 0.01 --json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["per_sec"], d["p50_us"]/1000, d["p99_us"]/1000)'
}
echo "rescind-bench check, 50 clients on $CONNS connections..." >&2
read -r s50_rps s50_p50 s50_p99 <<<"$(bench 50 "$CONNS")"
echo "rescind-bench check, 50 clients on 50 connections..." >&2
read -r c50_rps c50_p50 c50_p99 <<<"$(bench 50 50)"
echo "rescind-bench check, 1 client..." >&2
read -r s1_rps s1_p50 s1_p99 <<<"$(bench 1 1)"

# --- Rescind edge (a local replica following the node) ---------------------
eport=$(free_port)
"$BIN/rescind" edge --serve-threads 1 --upstream "127.0.0.1:$nport" --listen "127.0.0.1:$eport" --log warn >"$work/edge.out" 2>"$work/edge.log" &
edge_pid=$!
wait_for "rescind edge" grep -q listening "$work/edge.out"
edge_entries() { "$BIN/rescind" status --addr "127.0.0.1:$eport" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["deny_entries"])'; }
for _ in $(seq 600); do [ "$(edge_entries 2>/dev/null || echo 0)" -ge "$N" ] && break; sleep 0.1; done
echo "rescind-bench check against the edge, 50 clients on $CONNS connections, then 1 client..." >&2
read -r e50_rps e50_p50 e50_p99 <<<"$(bench 50 "$CONNS" "127.0.0.1:$eport")"
read -r e1_rps e1_p50 e1_p99 <<<"$(bench 1 1 "127.0.0.1:$eport")"

python3 - "$N" "$mem0" "$mem1" "$rss0" "$rss1" "$CONNS" \
  "$r50_rps" "$r50_p50" "$r50_p99" "$r1_rps" "$r1_p50" "$r1_p99" \
  "$s50_rps" "$s50_p50" "$s50_p99" "$s1_rps" "$s1_p50" "$s1_p99" \
  "$c50_rps" "$c50_p50" "$c50_p99" "$e50_rps" "$e50_p50" "$e50_p99" "$e1_rps" "$e1_p50" "$e1_p99" <<'PY'
import sys
a = sys.argv[1:]
e50, e50p50, e50p99, e1, e1p50, e1p99 = (float(x) for x in a[21:27])
n = int(a[0]); mem0, mem1, rss0, rss1 = (float(x) for x in a[1:5]); conns = int(a[5])
r50, r50p50, r50p99, r1, r1p50, r1p99, s50, s50p50, s50p99, s1, s1p50, s1p99, c50, c50p50, c50p99 = (float(x) for x in a[6:21])
redis_b = (mem1 - mem0) / n
rescind_b = (rss1 - rss0) * 1024 / n
print()
print(f"{'':<34}{'Redis SISMEMBER':>18}{'Rescind Check':>18}{'rescind/redis':>15}")
print(f"{'throughput, 50 clients (/s)':<34}{r50:>18,.0f}{s50:>18,.0f}{s50 / r50:>15.2f}")
print(f"{'p50 / p99, 50 clients (ms)':<34}{f'{r50p50:.3f} / {r50p99:.3f}':>18}{f'{s50p50:.3f} / {s50p99:.3f}':>18}")
print(f"{'  same, 1 connection per client':<34}{'':>18}{c50:>18,.0f}{c50 / r50:>15.2f}")
print(f"{'  p50 / p99 (ms)':<34}{'':>18}{f'{c50p50:.3f} / {c50p99:.3f}':>18}")
print(f"{'throughput, 1 client (/s)':<34}{r1:>18,.0f}{s1:>18,.0f}{s1 / r1:>15.2f}")
print(f"{'p50 / p99, 1 client (ms)':<34}{f'{r1p50:.3f} / {r1p99:.3f}':>18}{f'{s1p50:.3f} / {s1p99:.3f}':>18}")
print(f"{'edge Check, 50 clients (/s)':<34}{'':>18}{e50:>18,.0f}{e50 / r50:>15.2f}")
print(f"{'  p50 / p99 (ms)':<34}{'':>18}{f'{e50p50:.3f} / {e50p99:.3f}':>18}")
print(f"{'edge Check, 1 client (/s)':<34}{'':>18}{e1:>18,.0f}{e1 / r1:>15.2f}")
print(f"{'  p50 / p99 (ms)':<34}{'':>18}{f'{e1p50:.3f} / {e1p99:.3f}':>18}")
print(f"{'memory per revoked id (bytes)':<34}{redis_b:>18.0f}{rescind_b:>18.0f}{rescind_b / redis_b:>15.2f}")
print(f"({n:,} ids; Redis: 50 clients = 50 connections; Rescind: 50 callers on {conns} HTTP/2 connections unless noted;")
print(f" one serving thread each. Memory: Redis used_memory delta; Rescind RSS delta of the node, sled cache included)")
print(f"throughput ratio rescind/redis at 50 clients: {s50 / r50:.2f}")
PY
