#!/usr/bin/env bash
# A/B of two node binaries on one gRPC load pattern, alternating, so that a
# change to the serving path is measured against what it replaces in the
# same minutes on the same cores (figures move ±15% between runs here).
#
#   OLD=/tmp/rescind-old benches/ab-serve.sh                  # CheckBatch(256), 50 connections
#   OLD=/tmp/rescind-old BATCH=1 C=50 M=16 benches/ab-serve.sh # Check, 50 x 16 streams
#
# OLD (required) and NEW (default target/release/rescind) are `rescind`
# binaries. Each serves on one thread with N ids revoked (durable revokes,
# the same ids for both); then ROUNDS times, old first, h2load (-t 1) sends
# the same prebuilt body (`rescind-bench grpc-body --batch BATCH`, every id
# a miss) on C connections with M streams each for DURATION seconds to one
# node, then to the other. Prints checks/s per round and the medians.
set -euo pipefail
: "${OLD:?set OLD to the rescind binary to compare against}"
# Resolved before the cd below, so a relative path means what it said.
OLD=$(realpath "$OLD")
[ -n "${NEW:-}" ] && NEW=$(realpath "$NEW")
cd "$(dirname "$0")/.."
NEW=${NEW:-$PWD/target/release/rescind}
N=${N:-200000}
BATCH=${BATCH:-256}
C=${C:-50}
M=${M:-1}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
for v in N BATCH C M DURATION ROUNDS; do
  case "${!v}" in '' | *[!0-9]* | 0*) echo "$v must be a whole number of at least 1, got ${!v}" >&2; exit 2 ;; esac
done
[ "$BATCH" -ge 1 ] && [ "$BATCH" -le 1024 ] || { echo "BATCH must be in 1..=1024, got $BATCH" >&2; exit 2; }
command -v h2load >/dev/null && command -v nghttp >/dev/null || { echo "needs h2load and nghttp (Debian nghttp2-client)" >&2; exit 2; }
[ -x "$OLD" ] && [ -x "$NEW" ] || { echo "OLD=$OLD and NEW=$NEW must be executables" >&2; exit 2; }
cargo build --release -q -p rescind-benches
BIN=target/release

work=$(mktemp -d)
pids=()
cleanup() {
  for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh

method=Check
[ "$BATCH" -gt 1 ] && method=CheckBatch
"$BIN/rescind-bench" grpc-body --batch "$BATCH" --out "$work/body.bin"
ports=()
for side in old new; do
  bin=$OLD
  [ "$side" = new ] && bin=$NEW
  port=$(free_port)
  "$bin" serve --serve-threads 1 --data-dir "$work/$side" --listen "127.0.0.1:$port" --http-listen off --log warn \
    >"$work/$side.out" 2>"$work/$side.log" &
  pids+=($!)
  wait_for "$side node" grep -q listening "$work/$side.out"
  echo "$side: preloading $N revocations..." >&2
  "$BIN/rescind-bench" check --addr "127.0.0.1:$port" --data-dir "$work/$side" --preload "$N" \
    --concurrency 1 --connections 1 --duration 100ms >/dev/null
  nghttp -v -d "$work/body.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$port/rescind.v1.Revocations/$method" >"$work/nghttp.out" 2>&1 || true
  grep -q "grpc-status: 0" "$work/nghttp.out" || { echo "$side refuses the body:" >&2; cat "$work/nghttp.out" >&2; exit 1; }
  ports+=("$port")
done

: >"$work/results"
for round in $(seq "$ROUNDS"); do
  for i in 0 1; do
    side=old
    [ "$i" = 1 ] && side=new
    h2load -D "$DURATION" -c "$C" -m "$M" -t 1 -d "$work/body.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:${ports[$i]}/rescind.v1.Revocations/$method" >"$work/h2.out"
    # Every stream answered HTTP 200 (the body was checked to answer
    # grpc-status 0 above; h2load cannot see trailers).
    grep -q "0 failed, 0 errored, 0 timeout" "$work/h2.out" \
      && grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" "$work/h2.out" \
      || { echo "h2load saw errors:" >&2; cat "$work/h2.out" >&2; exit 1; }
    rps=$(grep -oE '[0-9.]+ req/s' "$work/h2.out" | cut -d' ' -f1)
    echo "$side $round $rps" >>"$work/results"
    echo "round $round $side: $rps calls/s" >&2
  done
done
python3 - "$work/results" "$BATCH" "$C" "$M" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
batch, c, m = map(int, sys.argv[2:5])
per = {s: [float(r) * batch for side, _, r in rows if side == s] for s in ("old", "new")}
print(f"{'CheckBatch(%d)' % batch if batch > 1 else 'Check'}, h2load {c} connections x {m} streams, checks/s:")
for s in ("old", "new"):
    print(f"  {s}: median {statistics.median(per[s]):,.0f}  rounds " + " ".join(f"{v:,.0f}" for v in per[s]))
print(f"  new / old: {statistics.median(per['new']) / statistics.median(per['old']):.2f}")
PY
