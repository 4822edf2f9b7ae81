#!/usr/bin/env bash
# Edges and Watch, side by side on this machine, in one run.
#
#   benches/edge.sh                      # 1M ids, 10 s per Check measurement
#   N=200000 DURATION=5s benches/edge.sh
#
# Starts a node (loopback, free port, temporary data dir, one serving
# thread), preloads N revocations, starts `rescind edge` following it (one
# serving thread too: like for like), and
# measures with rescind-bench (one load thread):
#   1. Check on the node and on the edge: 50 callers on 4 HTTP/2 connections,
#      50 callers on 50 connections, and 1 caller;
#   2. Check on the node while 100 idle Watch streams are open, against none;
#   3. node RSS per idle Watch stream;
#   4. ack -> Watch stream at RATE revokes/s (default 1000) with 100 streams;
#   5. an in-process Replica of the N ids: deny-set bytes against the node's.
# Every process is stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
DURATION=${DURATION:-10s}
RATE=${RATE:-1000}
STREAMS=${STREAMS:-100}

echo "building release binaries..." >&2
cargo build --release -q -p rescind-cli -p rescind-benches
BIN=target/release

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh

nport=$(free_port)
"$BIN/rescind" serve --serve-threads 1 --data-dir "$work/data" --listen "127.0.0.1:$nport" --http-listen off --log info >"$work/node.out" 2>"$work/node.log" &
node_pid=$!; pids+=("$node_pid")
wait_for "rescind node" grep -q listening "$work/node.out"
node="127.0.0.1:$nport"
echo "preloading $N revocations (durable revokes, 64 in flight)..." >&2
"$BIN/rescind-bench" check --addr "$node" --data-dir "$work/data" --preload "$N" \
  --concurrency 1 --connections 1 --duration 100ms >/dev/null

eport=$(free_port)
"$BIN/rescind" edge --serve-threads 1 --upstream "$node" --listen "127.0.0.1:$eport" --log warn >"$work/edge.out" 2>"$work/edge.log" &
edge_pid=$!; pids+=("$edge_pid")
wait_for "rescind edge" grep -q listening "$work/edge.out"
edge="127.0.0.1:$eport"
digest() { "$BIN/rescind" status --addr "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])'; }
want=$(digest "$node")
echo "waiting for the edge to hold the node's $N ids..." >&2
for _ in $(seq 3000); do [ "$(digest "$edge" 2>/dev/null || true)" = "$want" ] && break; sleep 0.1; done
[ "$(digest "$edge")" = "$want" ] || { echo "the edge did not catch up" >&2; exit 1; }

bench() { # addr clients connections -> "rps p50_ms p99_ms"
  "$BIN/rescind-bench" --threads 1 check --addr "$1" --data-dir "$work/data" --preload "$N" \
    --concurrency "$2" --connections "$3" --duration "$DURATION" --hit-ratio 0.01 --json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["per_sec"], d["p50_us"]/1000, d["p99_us"]/1000)'
}
rows=()
for pattern in "50 4" "50 50" "1 1"; do
  set -- $pattern
  echo "Check, $1 callers on $2 connections: node, then edge..." >&2
  rows+=("$1 $2 $(bench "$node" "$1" "$2") $(bench "$edge" "$1" "$2")")
done

rss() { ps -o rss= -p "$node_pid" | tr -d ' '; }
rss0=$(rss)
"$BIN/rescind-bench" watch --addr "$node" --streams "$STREAMS" --rate 0 --hold 60s >"$work/hold.out" 2>&1 &
hold_pid=$!; pids+=("$hold_pid")
wait_for "$STREAMS Watch streams" grep -q "streams open" "$work/hold.out"
sleep 2
rss1=$(rss)
echo "Check on the node with $STREAMS idle Watch streams..." >&2
read -r w_rps w_p50 w_p99 <<<"$(bench "$node" 50 4)"
kill "$hold_pid" 2>/dev/null || true

echo "ack -> Watch stream, $RATE revokes/s, $STREAMS streams..." >&2
prop=$("$BIN/rescind-bench" watch --addr "$node" --data-dir "$work/data" --streams "$STREAMS" \
  --rate "$RATE" --count $((RATE * 10)) --json)

echo "in-process replica of $N ids..." >&2
rep=$("$BIN/rescind-bench" replica --addr "$node" --data-dir "$work/data")
node_deny=$("$BIN/rescind" status --addr "$node" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["deny_bytes"])')

python3 - "$N" "$STREAMS" "$RATE" "$rss0" "$rss1" "$w_rps" "$w_p50" "$w_p99" "$prop" "$rep" "${node_deny:-0}" "${rows[@]}" <<'PY'
import json, sys
a = sys.argv[1:]
n, streams, rate = int(a[0]), int(a[1]), a[2]
rss0, rss1 = float(a[3]), float(a[4])
w_rps, w_p50, w_p99 = (float(x) for x in a[5:8])
prop, rep, node_deny = json.loads(a[8]), json.loads(a[9]), int(a[10])
rows = [r.split() for r in a[11:]]
print()
print(f"{'Check (' + format(n, ',') + ' ids)':<40}{'node':>16}{'edge':>16}{'edge/node':>11}")
base = None
for r in rows:
    clients, conns = r[0], r[1]
    nr, np50, np99, er, ep50, ep99 = (float(x) for x in r[2:8])
    if clients == "50" and conns == "4":
        base = nr
    print(f"{clients + ' callers on ' + conns + ' conns (/s)':<40}{nr:>16,.0f}{er:>16,.0f}{er / nr:>11.2f}")
    print(f"{'  p50 / p99 (ms)':<40}{f'{np50:.3f} / {np99:.3f}':>16}{f'{ep50:.3f} / {ep99:.3f}':>16}")
print()
print(f"node Check, 50 callers on 4 conns, with {streams} idle Watch streams: {w_rps:,.0f}/s "
      f"({w_rps / base:.2f}x without), p50 {w_p50:.3f} ms, p99 {w_p99:.3f} ms")
print(f"node RSS per idle Watch stream: {(rss1 - rss0) / streams:.1f} KiB ({rss0:.0f} -> {rss1:.0f} KiB)")
for p, label in zip(prop, ["ack -> Watch stream", "revoke sent -> Watch stream", "revoke sent -> ack (durable)"]):
    print(f"{label}, {rate} revokes/s, {streams} streams: p50 {p['p50_us'] / 1000:.2f} ms, "
          f"p99 {p['p99_us'] / 1000:.2f} ms, p99.9 {p['p999_us'] / 1000:.2f} ms ({p['ops']:,} samples, {p['errors']} missing)")
ratio = f" = {rep['deny_bytes'] / node_deny:.2f}x the node's {node_deny / n:.1f} B" if node_deny else ""
print(f"replica of {rep['entries']:,} ids: deny set {rep['deny_bytes_per_entry']:.1f} B/id{ratio}; "
      f"RSS +{rep['rss_delta_kib'] * 1024 / max(rep['entries'], 1):.1f} B/id; synced in {rep['sync_seconds']:.1f} s")
PY
