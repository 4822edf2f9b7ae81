#!/usr/bin/env bash
# Gateways, side by side on this machine, in one run.
#
#   benches/gateway.sh                 # 10 s per measurement
#   DURATION=5s COUNT=200000 benches/gateway.sh
#
# Needs wrk and nginx (apt-get install wrk nginx-light); h2load
# (nghttp2-client) for the ext_authz rows from a C load generator. Starts two nodes
# (loopback, free ports, temporary data dirs) verifying ES256 JWTs from the
# test-only fixture JWKS: one with the verified-signature cache (default),
# one with it off (--jwt-cache-entries 0), and measures:
#   1. forward-auth GET /v1/authz, wrk with 50 connections (1 thread), on
#      each node: cache hits, then every request verifying the signature;
#   2. ext_authz Check, rescind-bench with 50 callers on 4 and on 50
#      HTTP/2 connections, on each node;
#   3. RevokeBatch of fresh ids, batches of 10,000, 1 and 4 in flight, and
#      `rescind revoke tokens --from-file` over COUNT ids;
#   4. nginx serving a static file alone, and with auth_request to
#      /v1/authz (keepalive to Rescind), wrk with 50 connections: the added
#      p50 and p99.
# Every process is stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
COUNT=${COUNT:-1000000}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || { echo "needs nginx (apt-get install nginx-light)" >&2; exit 1; }

echo "building release binaries..." >&2
cargo build --release -q -p rescind-cli -p rescind-benches
BIN=target/release
FIX=crates/rescind-jwt/tests/fixtures

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. benches/lib.sh

start_node() { # name extra-flags... -> sets grpc_<name>, http_<name>
  local name=$1; shift
  local gport hport
  gport=$(free_port); hport=$(free_port)
  "$BIN/rescind" serve --data-dir "$work/$name" --listen "127.0.0.1:$gport" --http-listen "127.0.0.1:$hport" \
    --jwks-file "$FIX/jwks.json" --jwt-issuer https://idp.bench --jwt-audience api --log warn "$@" \
    >"$work/$name.out" 2>"$work/$name.log" &
  pids+=("$!")
  wait_for "rescind $name" grep -q listening "$work/$name.out"
  printf -v "grpc_$name" '%s' "127.0.0.1:$gport"
  printf -v "http_$name" '%s' "127.0.0.1:$hport"
}
start_node cached
start_node uncached --jwt-cache-entries 0
JWT=$("$BIN/rescind-bench" mint-jwt)

wrk_run() { # url [header] -> "rps p50_ms p99_ms"
  local out
  out=$(wrk -t1 -c50 -d"$DURATION" --latency -H "Authorization: Bearer $JWT" "$1")
  local non2xx
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  [ -z "$non2xx" ] || { echo "wrk saw $non2xx non-2xx answers from $1" >&2; exit 1; }
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $p50 $p99"
}

echo
echo "== forward-auth GET /v1/authz, ES256, wrk -t1 -c50 -d$DURATION"
r=$(wrk_run "http://$http_cached/v1/authz"); echo "cache hits:      $r  (req/s p50 p99)"
r=$(wrk_run "http://$http_uncached/v1/authz"); echo "uncached:        $r  (req/s p50 p99)"

echo
echo "== ext_authz Check, ES256, rescind-bench, 50 callers"
for conns in 4 50; do
  echo "cache hits, $conns conns: $("$BIN/rescind-bench" ext-authz --addr "$grpc_cached" --jwt "$JWT" --connections $conns --concurrency 50 --duration "$DURATION")"
  echo "uncached,   $conns conns: $("$BIN/rescind-bench" ext-authz --addr "$grpc_uncached" --jwt "$JWT" --connections $conns --concurrency 50 --duration "$DURATION")"
done

if command -v h2load >/dev/null; then
  echo
  echo "== ext_authz Check, ES256, h2load (nghttp2-client, 1 thread), the same CheckRequest each time"
  "$BIN/rescind-bench" mint-jwt --ext-authz-body "$work/check.bin" >/dev/null
  h2() { # addr conns streams -> "req/s p50_ms p99_ms"
    rm -f "$work/h2.log"
    h2load -D "${DURATION%s}" -c "$2" -m "$3" -t 1 -d "$work/check.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
      --log-file="$work/h2.log" "http://$1/envoy.service.auth.v3.Authorization/Check" >"$work/h2.out"
    python3 - "$work/h2.log" "$work/h2.out" <<'PY'
import re, sys
lat = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.strip())
bad = sum(1 for l in open(sys.argv[1]) if l.strip() and l.split()[1] != "200")
rps = re.search(r"([0-9.]+) req/s", open(sys.argv[2]).read()).group(1)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
print(f"{float(rps):.0f}/s p50 {q(0.50):.2f} ms p99 {q(0.99):.2f} ms ({len(lat)} requests, {bad} not HTTP 200)")
PY
  }
  echo "cache hits, 4 conns x 13 streams: $(h2 "$grpc_cached" 4 13)"
  echo "cache hits, 50 conns x 1 stream:  $(h2 "$grpc_cached" 50 1)"
  echo "uncached,   4 conns x 13 streams: $(h2 "$grpc_uncached" 4 13)"
fi

echo
echo "== RevokeBatch, batches of 10,000 fresh ids, durable"
for inflight in 1 4; do
  "$BIN/rescind-bench" revoke-batch --addr "$grpc_cached" --data-dir "$work/cached" --count "$COUNT" --size 10000 --in-flight $inflight
done
"$BIN/rescind-bench" ids --count "$COUNT" | sed 's/^/cli-/' >"$work/ids.txt"
echo "rescind revoke tokens --from-file ($COUNT ids):"
"$BIN/rescind" revoke tokens --from-file "$work/ids.txt" --addr "$grpc_cached" --data-dir "$work/cached" --timeout 60s 2>/dev/null

echo
echo "== nginx static file, alone and behind auth_request to /v1/authz (wrk -t1 -c50)"
mkdir -p "$work/nginx/www" "$work/nginx/tmp"/{body,proxy,fastcgi,uwsgi,scgi}
chmod o+rx "$work" "$work/nginx" "$work/nginx/www"   # nginx's workers may run as another user
echo ok >"$work/nginx/www/index.html"
alone=$(free_port); guarded=$(free_port)
t="$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $t/body; proxy_temp_path $t/proxy; fastcgi_temp_path $t/fastcgi;
  uwsgi_temp_path $t/uwsgi; scgi_temp_path $t/scgi;
  upstream rescind { server $http_cached; keepalive 64; }
  server { listen 127.0.0.1:$alone; root $work/nginx/www; }
  server {
    listen 127.0.0.1:$guarded; root $work/nginx/www;
    location / { auth_request /_authz; }
    location = /_authz {
      internal;
      proxy_pass http://rescind/v1/authz;
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
}
EOF
"$NGINX" -p "$work/nginx" -e stderr -c "$work/nginx/nginx.conf" 2>"$work/nginx.log" &
nginx_pid=$!; pids+=("$nginx_pid")
wait_for nginx python3 -c "import socket; socket.create_connection(('127.0.0.1', $guarded), 1)"
r=$(wrk_run "http://127.0.0.1:$alone/index.html"); echo "nginx alone:        $r  (req/s p50 p99)"
r=$(wrk_run "http://127.0.0.1:$guarded/index.html"); echo "nginx+auth_request: $r  (req/s p50 p99)"
kill -TERM "$nginx_pid" 2>/dev/null || true
