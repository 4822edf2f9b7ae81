#!/usr/bin/env bash
# Where one gRPC Check's CPU goes, on the node and on the load generator.
#
#   benches/profile-check.sh                 # 200k ids, 5 s per pattern
#   N=1000000 DURATION=10 benches/profile-check.sh
#
# Starts a node (loopback, free port, temporary data dir, one serving
# thread), preloads N ids, then for each load pattern runs h2load (one
# thread, the same prebuilt Check body, a miss) while `perf record` samples
# the node. For each pattern it prints:
#   - CPU per request of the node and of h2load (from /proc utime+stime);
#   - the node's samples grouped by benches/tools/perf_categories.py
#     (kernel, h2 framing, HPACK, hyper, tonic, protobuf, tokio, allocation...).
# With inferno installed (`cargo install inferno`), it also writes a
# flamegraph per pattern into OUT (default: a temporary dir it names).
# Needs perf (Debian: linux-perf), h2load (nghttp2-client) and GNU time (time).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200000}
DURATION=${DURATION:-5}
OUT=${OUT:-}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 2; }
command -v h2load >/dev/null || { echo "needs h2load (apt-get install nghttp2-client)" >&2; exit 2; }
echo "building release binaries..." >&2
cargo build --release -q -p rescind-cli -p rescind-benches
BIN=target/release
work=$(mktemp -d)
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh
[ -n "$OUT" ] || OUT=$(mktemp -d)
mkdir -p "$OUT"

port=$(free_port)
"$BIN/rescind" serve --serve-threads 1 --data-dir "$work/data" --listen "127.0.0.1:$port" --http-listen off --log warn >"$work/node.out" 2>"$work/node.log" &
node_pid=$!
wait_for "rescind node" grep -q listening "$work/node.out"
echo "preloading $N revocations..." >&2
"$BIN/rescind-bench" check --addr "127.0.0.1:$port" --data-dir "$work/data" --preload "$N" \
  --concurrency 1 --connections 1 --duration 100ms >/dev/null
"$BIN/rescind-bench" grpc-body --out "$work/check.bin"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

for pattern in "1 1" "50 1" "4 13" "50 16"; do
  set -- $pattern
  echo "== h2load -c $1 -m $2 (connections x streams each), ${DURATION} s"
  h2=(h2load -D "$DURATION" -c "$1" -m "$2" -t 1 -d "$work/check.bin" -H 'content-type: application/grpc' -H 'te: trailers'
    "http://127.0.0.1:$port/rescind.v1.Revocations/Check")
  # First without perf (its sampling slows a ping-pong pattern several
  # times over): throughput and CPU per request of both processes.
  n0=$(ticks "$node_pid")
  /usr/bin/time -f "%U %S" -o "$work/h2.time" "${h2[@]}" >"$work/h2.out"
  n1=$(ticks "$node_pid")
  rps=$(grep -oE '[0-9.]+ req/s' "$work/h2.out" | cut -d' ' -f1)
  python3 -c 'import sys; rps,n,hz,d,u,s=map(float,sys.argv[1:]); r=rps*d; print(f"{rps:,.0f} req/s; CPU per request: node {1e6*n/hz/r:.1f} us, h2load {1e6*(u+s)/r:.1f} us")' \
    "$rps" $((n1 - n0)) "$hz" "$DURATION" $(cat "$work/h2.time")
  # Then again under perf, for where the node's CPU goes.
  "${h2[@]}" >/dev/null &
  h2_pid=$!
  perf record -q -F 2999 -e cpu-clock -g -p "$node_pid" -o "$work/perf.data" -- sleep "$DURATION" >/dev/null 2>&1
  wait "$h2_pid"
  perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null >"$work/flat.txt"
  python3 benches/tools/perf_categories.py "$work/flat.txt"
  if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
    perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf | inferno-flamegraph >"$OUT/check-c$1-m$2.svg"
    echo "flamegraph: $OUT/check-c$1-m$2.svg"
  fi
done
