#!/usr/bin/env bash
# Rescind's gRPC Check against a Redis deny list, every connection pattern,
# side by side on this machine, in one run.
#
#   benches/compare-redis.sh                       # 200k ids, 3 rounds of 5 s per measurement
#   N=1000000 ROUNDS=1 DURATION=10s benches/compare-redis.sh
#   EDGE=0 benches/compare-redis.sh                # skip the edge rows
#
# Installs redis-server / redis-tools and nghttp2-client (h2load) from Debian
# if missing. Starts Redis (loopback, free port, no persistence) and a Rescind
# node (loopback, free port, temporary data dir, one serving thread), loads
# the same N ids into both, then, ROUNDS times, measures every load pattern
# below on each and prints the medians (and every round's ratio) in one table.
# Every lookup is a miss (an id never revoked), as most deny-list lookups are.
#
#   row                        Redis (redis-benchmark)        Rescind (rescind-bench and h2load)
#   1 client, 1 in flight      -c 1                           1 caller, 1 connection
#   50 conns, 1 in flight each -c 50                          50 callers, 50 connections
#   50 in flight, 4 conns      -c 50 (one per request)        50 callers on 4 connections (h2load: 4 x 13 = 52)
#   50 conns, 16 in flight     -c 50 -P 16 (pipelined)        800 callers on 50 connections, 16 streams each
#   CheckBatch(16), 50 conns   -c 50 -P 16 SISMEMBER          CheckBatch of 16 ids, 50 callers on 50 connections
#   CheckBatch(256), 50 conns  -c 50 SMISMEMBER of 256 ids    CheckBatch of 256 ids, 50 callers on 50 connections
#
# The two batch rows count checks (ids answered) per second, not calls.
# Like for like: Redis serves on one thread and redis-benchmark loads on one,
# so the node serves on one thread (--serve-threads 1), and rescind-bench
# (--threads 1) and h2load (-t 1) load on one. h2load, a C HTTP/2 load
# generator, sends the same prebuilt request body on every call
# (`rescind-bench grpc-body`); its figure stands next to rescind-bench's so
# that no number rests on our own client alone.
# Every server is stopped by PID at the end. The last line is
#   throughput ratio rescind/redis, 1 client: X.XX
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200000}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
REQS=${REQS:-300000}
EDGE=${EDGE:-1}
secs=${DURATION%s}
case "$secs" in '' | *[!0-9]*) echo "DURATION must be whole seconds like 5s, got $DURATION" >&2; exit 2 ;; esac

need=()
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || need+=(redis-server redis-tools)
command -v h2load >/dev/null && command -v nghttp >/dev/null || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from Debian..." >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q "${need[@]}" >/dev/null
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
results="$work/results"
: >"$results"
# record ROW SYSTEM ROUND "per_sec p50_ms p99_ms"
record() { echo "$1 $2 $3 $4" >>"$results"; }

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
miss=$("$BIN/rescind-bench" ids --count 1 --absent)
mapfile -t misses256 < <("$BIN/rescind-bench" ids --count 256 --absent)
[ "$(redis-cli -p "$rport" sismember deny "$miss")" = 0 ] || { echo "the Redis miss id is in the set" >&2; exit 1; }
redis_run() { # requests benchmark-args... -> "per_sec p50_ms p99_ms" (per command)
  local n=$1; shift
  redis-benchmark -p "$rport" -n "$n" --csv "$@" \
    | python3 -c 'import csv,sys; rows=list(csv.reader(sys.stdin)); d=dict(zip(rows[0], rows[-1])); print(d["rps"], d["p50_latency_ms"], d["p99_latency_ms"])'
}
scale() { # factor "per_sec p50 p99" -> per_sec*factor p50 p99
  python3 -c 'import sys; f=float(sys.argv[1]); r,a,b=sys.argv[2].split(); print(float(r)*f, a, b)' "$1" "$2"
}

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
bench() { # callers connections batch [addr] -> "checks_per_sec p50_ms p99_ms"
  "$BIN/rescind-bench" --threads 1 check --addr "${4:-127.0.0.1:$nport}" --preload 0 \
    --concurrency "$1" --connections "$2" --batch "$3" --duration "$DURATION" --hit-ratio 0 --json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["errors"] == 0, d; print(d["per_sec"], d["p50_us"]/1000, d["p99_us"]/1000)'
}
"$BIN/rescind-bench" grpc-body --out "$work/check.bin"
"$BIN/rescind-bench" grpc-body --batch 16 --out "$work/batch16.bin"
"$BIN/rescind-bench" grpc-body --batch 256 --out "$work/batch256.bin"
# One call with nghttp first: h2load counts HTTP 200s, and a gRPC error is a
# 200 with a grpc-status trailer, so the body must be known to succeed.
for m in "Check check.bin" "CheckBatch batch256.bin"; do
  set -- $m
  nghttp -v -d "$work/$2" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$nport/rescind.v1.Revocations/$1" >"$work/nghttp.out" 2>&1 || true
  grep -q "grpc-status: 0" "$work/nghttp.out" || { echo "the prebuilt $1 body is refused:" >&2; cat "$work/nghttp.out" >&2; exit 1; }
done
h2() { # connections streams body method checks_per_call -> "checks_per_sec p50_ms p99_ms"
  rm -f "$work/h2.log"
  h2load -D "$secs" -c "$1" -m "$2" -t 1 -d "$work/$3" -H 'content-type: application/grpc' -H 'te: trailers' \
    --log-file="$work/h2.log" "http://127.0.0.1:$nport/rescind.v1.Revocations/$4" >"$work/h2.out"
  python3 - "$work/h2.log" "$work/h2.out" "$5" <<'PY'
import re, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
bad = sum(1 for r in rows if r[1] != "200")
assert rows and bad == 0, f"h2load: {bad} of {len(rows)} requests not HTTP 200"
lat = sorted(int(r[2]) for r in rows)
rps = float(re.search(r"([0-9.]+) req/s", open(sys.argv[2]).read()).group(1))
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
print(rps * int(sys.argv[3]), q(0.50), q(0.99))
PY
}

for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS: redis-benchmark..." >&2
  record c1 redis "$round" "$(redis_run $((REQS / 5)) -c 1 SISMEMBER deny "$miss")"
  record c50 redis "$round" "$(redis_run "$REQS" -c 50 SISMEMBER deny "$miss")"
  # Redis has no multiplexing: its side of "50 in flight on 4 connections"
  # is the 50-connection run, and of CheckBatch(16) the pipelined x16 run.
  tail -n 1 "$results" | sed 's/^c50 /mux4 /' >>"$results"
  record s16 redis "$round" "$(redis_run $((REQS * 10)) -c 50 -P 16 SISMEMBER deny "$miss")"
  tail -n 1 "$results" | sed 's/^s16 /b16 /' >>"$results"
  record b256 redis "$round" "$(scale 256 "$(redis_run $((REQS / 12)) -c 50 SMISMEMBER deny "${misses256[@]}")")"
  echo "round $round of $ROUNDS: rescind-bench..." >&2
  record c1 bench "$round" "$(bench 1 1 1)"
  record c50 bench "$round" "$(bench 50 50 1)"
  record mux4 bench "$round" "$(bench 50 4 1)"
  record s16 bench "$round" "$(bench 800 50 1)"
  record b16 bench "$round" "$(bench 50 50 16)"
  record b256 bench "$round" "$(bench 50 50 256)"
  echo "round $round of $ROUNDS: h2load..." >&2
  record c1 h2load "$round" "$(h2 1 1 check.bin Check 1)"
  record c50 h2load "$round" "$(h2 50 1 check.bin Check 1)"
  record mux4 h2load "$round" "$(h2 4 13 check.bin Check 1)"
  record s16 h2load "$round" "$(h2 50 16 check.bin Check 1)"
  record b16 h2load "$round" "$(h2 50 1 batch16.bin CheckBatch 16)"
  record b256 h2load "$round" "$(h2 50 1 batch256.bin CheckBatch 256)"
done

# --- Rescind edge (a local replica following the node) ---------------------
edge_rows=""
if [ "$EDGE" = 1 ]; then
  eport=$(free_port)
  "$BIN/rescind" edge --serve-threads 1 --upstream "127.0.0.1:$nport" --listen "127.0.0.1:$eport" --log warn >"$work/edge.out" 2>"$work/edge.log" &
  edge_pid=$!
  wait_for "rescind edge" grep -q listening "$work/edge.out"
  edge_entries() { "$BIN/rescind" status --addr "127.0.0.1:$eport" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["deny_entries"])'; }
  for _ in $(seq 600); do [ "$(edge_entries 2>/dev/null || echo 0)" -ge "$N" ] && break; sleep 0.1; done
  echo "rescind-bench check against the edge, 50 callers on 50 connections, then 1..." >&2
  edge_rows="$(bench 50 50 1 "127.0.0.1:$eport") $(bench 1 1 1 "127.0.0.1:$eport")"
fi

python3 - "$results" "$N" "$ROUNDS" "$mem0" "$mem1" "$rss0" "$rss1" "$edge_rows" <<'PY'
import statistics, sys
path, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mem0, mem1, rss0, rss1 = (float(x) for x in sys.argv[4:8])
edge = [float(x) for x in sys.argv[8].split()]
data = {}
for line in open(path):
    row, system, rnd, rps, p50, p99 = line.split()
    data.setdefault((row, system), []).append((int(rnd), float(rps), float(p50), float(p99)))
rows = [
    ("c1", "1 client, 1 in flight", "", 1.0),
    ("c50", "50 connections, 1 in flight each", "", 1.0),
    ("mux4", "50 in flight on 4 HTTP/2 connections", "Redis: 50 connections; h2load 4 x 13", 2.0),
    ("s16", "50 connections, 16 streams each", "Redis pipelined x16", 0.3),
    ("b16", "CheckBatch(16) on 50 connections, checks/s", "Redis pipelined x16", 2.0),
    ("b256", "CheckBatch(256) on 50 connections, checks/s", "Redis SMISMEMBER of 256", 1.0),
]
med = lambda xs: statistics.median(xs)
def m(row, system, i):
    return med([r[i] for r in data[(row, system)]])
print()
print(f"{n:,} ids, every lookup a miss; {rounds} round(s), medians; one serving thread, one load thread each.")
print(f"{'load':<46}{'Redis /s':>12}{'rescind-bench /s':>18}{'h2load /s':>12}{'ratio':>8}{'h2load ratio':>14}{'target':>8}  per-round ratios (rescind-bench)")
for key, label, note, target in rows:
    redis, bench, h2 = m(key, "redis", 1), m(key, "bench", 1), m(key, "h2load", 1)
    per_round = []
    for rnd in range(1, rounds + 1):
        rr = [r[1] for r in data[(key, "redis")] if r[0] == rnd]
        bb = [r[1] for r in data[(key, "bench")] if r[0] == rnd]
        if rr and bb:
            per_round.append(f"{bb[0] / rr[0]:.2f}")
    ratio = bench / redis
    mark = "met" if ratio >= target else "below"
    print(f"{label:<46}{redis:>12,.0f}{bench:>18,.0f}{h2:>12,.0f}{ratio:>8.2f}{h2 / redis:>14.2f}{f'>= {target}':>8}  {' '.join(per_round)} ({mark})")
    if note:
        print(f"{'  (' + note + ')':<46}")
print()
print("latency, 1 client (ms)          p50      p99")
for system, label in (("redis", "Redis SISMEMBER"), ("bench", "Rescind Check, rescind-bench"), ("h2load", "Rescind Check, h2load")):
    print(f"  {label:<30}{m('c1', system, 2):>7.3f}  {m('c1', system, 3):>7.3f}")
print("latency, 50 connections (ms)    p50      p99")
for system, label in (("redis", "Redis SISMEMBER"), ("bench", "Rescind Check, rescind-bench"), ("h2load", "Rescind Check, h2load")):
    print(f"  {label:<30}{m('c50', system, 2):>7.3f}  {m('c50', system, 3):>7.3f}")
if edge:
    r50, r1 = m("c50", "redis", 1), m("c1", "redis", 1)
    print(f"edge Check, 50 callers on 50 connections: {edge[0]:,.0f}/s ({edge[0] / r50:.2f}x Redis), p50 {edge[1]:.3f} ms, p99 {edge[2]:.3f} ms")
    print(f"edge Check, 1 client: {edge[3]:,.0f}/s ({edge[3] / r1:.2f}x Redis), p50 {edge[4]:.3f} ms, p99 {edge[5]:.3f} ms")
redis_b = (mem1 - mem0) / n
rescind_b = (rss1 - rss0) * 1024 / n
print(f"memory per revoked id: Redis {redis_b:.0f} B (used_memory delta), Rescind {rescind_b:.0f} B (node RSS delta)")
print(f"throughput ratio rescind/redis, 1 client: {m('c1', 'bench', 1) / m('c1', 'redis', 1):.2f}")
PY
