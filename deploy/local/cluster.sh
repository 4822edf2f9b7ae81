#!/usr/bin/env bash
# Start a local Rescind cluster: 3 regions (eu, us, ap) x 2 nodes on loopback,
# ports 7411-7432, data in deploy/local/data. Ctrl-C stops every node.
#
#   deploy/local/cluster.sh            # builds the release binary first
#   RESCIND_BIN=path/to/rescind deploy/local/cluster.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
bin=${RESCIND_BIN:-}
if [ -z "$bin" ]; then
  echo "building rescind (release)..." >&2
  cargo build --release -q -p rescind-cli
  bin="$root/target/release/rescind"
fi
mkdir -p deploy/local/data
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
for cfg in "$here"/*.toml; do
  name=$(basename "$cfg" .toml)
  "$bin" serve --config "$cfg" >"deploy/local/data/$name.out" 2>"deploy/local/data/$name.log" &
  pids+=($!)
done
# Wait (bounded) for every node's "listening" line.
for cfg in "$here"/*.toml; do
  name=$(basename "$cfg" .toml)
  for _ in $(seq 300); do
    grep -q "listening" "deploy/local/data/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  if ! grep -q "listening" "deploy/local/data/$name.out" 2>/dev/null; then
    echo "node $name did not start; see deploy/local/data/$name.log" >&2
    exit 1
  fi
  sed 's/^rescind listening on /  /' "deploy/local/data/$name.out"
done
cat <<MSG

6 nodes up (logs in deploy/local/data/*.log). Try, in another terminal:
  $bin revoke token tok-1 --addr 127.0.0.1:7411 --data-dir deploy/local/data/eu-1
  $bin check --token-id tok-1 --addr 127.0.0.1:7432
  $bin peers --addr 127.0.0.1:7421
Ctrl-C stops the cluster.
MSG
wait
