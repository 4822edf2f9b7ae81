#!/usr/bin/env bash
# What metrics cost: Check throughput with metrics on vs off, and how long a
# scrape of /metrics takes on a node holding many ids.
#
#   benches/metrics.sh                       # 1M ids for the Check rows, 10M for the scrape
#   N=200000 SCRAPE_N=1000000 DURATION=5s benches/metrics.sh
#   DATA=/var/tmp/rescind-10m benches/metrics.sh   # reuse a filled 10M dir (restart-memory.sh's)
#
# 1. One node (one serving thread, like compare-redis.sh) on N preloaded ids;
#    `rescind-bench check` at 50 callers on 4 connections, 50 on 50, and 1,
#    first with metrics on (and /metrics scraped every second, as Prometheus
#    would), then with --metrics false, then on and off again: each row is
#    the better of its two runs, and the ratio is on / off.
# 2. A node on a data dir filled with SCRAPE_N ids (`rescind-bench fill`):
#    50 scrapes of /metrics with curl, p50 / p99 / max time and the body size.
# Every server is stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
SCRAPE_N=${SCRAPE_N:-10000000}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-4}
echo "building release binaries..." >&2
cargo build --release -q -p rescind-cli -p rescind-benches
BIN=target/release

work=$(mktemp -d)
node_pid=""
scraper_pid=""
cleanup() {
  [ -n "$scraper_pid" ] && kill "$scraper_pid" 2>/dev/null || true
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh

start_node() { # data_dir metrics(true|false) -> sets node_pid nport hport
  nport=$(free_port); hport=$(free_port)
  "$BIN/rescind" serve --serve-threads 1 --data-dir "$1" --listen "127.0.0.1:$nport" \
    --http-listen "127.0.0.1:$hport" --metrics "$2" --log warn >"$work/node.out" 2>"$work/node.log" &
  node_pid=$!
  wait_for "rescind node" grep -q listening "$work/node.out"
}
stop_node() {
  [ -n "$scraper_pid" ] && { kill "$scraper_pid" 2>/dev/null || true; wait "$scraper_pid" 2>/dev/null || true; scraper_pid=""; }
  kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
  : >"$work/node.out"
}
bench() { # clients connections -> "rps p50_ms p99_ms"
  "$BIN/rescind-bench" --threads 1 check --addr "127.0.0.1:$nport" --data-dir "$work/data" --preload "$N" \
    --concurrency "$1" --connections "$2" --duration "$DURATION" --hit-ratio 0.01 --json \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["per_sec"], d["p50_us"]/1000, d["p99_us"]/1000)'
}

# --- 1. Check with metrics on and off ---------------------------------------
start_node "$work/data" true
echo "preloading $N revocations..." >&2
"$BIN/rescind-bench" check --addr "127.0.0.1:$nport" --data-dir "$work/data" --preload "$N" \
  --concurrency 1 --connections 1 --duration 100ms >/dev/null
stop_node
declare -A best
for round in 1 2; do
  for m in true false; do
    start_node "$work/data" "$m"
    if [ "$m" = true ]; then
      # Scraped every second during the runs, as Prometheus would.
      ( while :; do curl -s -o /dev/null "http://127.0.0.1:$hport/metrics"; sleep 1; done ) &
      scraper_pid=$!
    fi
    for load in "50 $CONNS" "50 50" "1 1"; do
      echo "round $round, metrics $m, check $load (clients connections)..." >&2
      read -r rps p50 p99 <<<"$(bench $load)"
      key="$m/$load"
      prev=${best[$key]:-0 0 0}
      if python3 -c "import sys; sys.exit(0 if float('$rps') > float('${prev%% *}') else 1)"; then
        best[$key]="$rps $p50 $p99"
      fi
    done
    stop_node
  done
done

# --- 2. Scrape time on SCRAPE_N ids ----------------------------------------
data=${DATA:-$work/fill}
if [ ! -d "$data/checkpoints" ] && [ ! -d "$data/db" ]; then
  echo "filling $data with $SCRAPE_N ids..." >&2
  "$BIN/rescind-bench" fill --data-dir "$data" --count "$SCRAPE_N" >&2
fi
start_node "$data" true
entries=$(curl -s "http://127.0.0.1:$hport/metrics" | awk '/^rescind_deny_entries / {print $2}')
: >"$work/times"
for _ in $(seq 50); do
  curl -s -o "$work/body" -w '%{time_total}\n' "http://127.0.0.1:$hport/metrics" >>"$work/times"
done
bytes=$(wc -c <"$work/body")
stop_node

python3 - "$N" "$CONNS" "$entries" "$bytes" "$work/times" \
  "${best[true/50 $CONNS]}" "${best[false/50 $CONNS]}" "${best[true/50 50]}" "${best[false/50 50]}" \
  "${best[true/1 1]}" "${best[false/1 1]}" <<'PY'
import sys
n, conns, entries, size, times = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
rows = [tuple(float(x) for x in r.split()) for r in sys.argv[6:12]]
t = sorted(float(x) * 1000 for x in open(times))
pct = lambda p: t[min(len(t) - 1, int(p * len(t)))]
print()
print(f"{'Check, one serving thread':<34}{'metrics on':>18}{'metrics off':>18}{'on / off':>10}")
for label, on, off in [(f"50 clients on {conns} connections", rows[0], rows[1]),
                       ("50 clients on 50 connections", rows[2], rows[3]),
                       ("1 client", rows[4], rows[5])]:
    print(f"{label + ' (/s)':<34}{on[0]:>18,.0f}{off[0]:>18,.0f}{on[0] / off[0]:>10.3f}")
    print(f"{'  p50 / p99 (ms)':<34}{f'{on[1]:.3f} / {on[2]:.3f}':>18}{f'{off[1]:.3f} / {off[2]:.3f}':>18}")
print(f"({int(n):,} ids, 1% hits; best of 2 runs each; metrics on = /metrics scraped every 1 s)")
print()
print(f"scrape of /metrics, node with {float(entries):,.0f} ids: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, "
      f"max {t[-1]:.1f} ms over {len(t)} scrapes; {size:,} bytes")
PY
