#!/usr/bin/env bash
# Validate the monitoring config: Prometheus rules, their unit tests, the
# Prometheus config and the Grafana dashboard JSON. Exits non-zero on the first
# failure; 127 when promtool or python3 is missing.
#   deploy/prometheus/check.sh            # from anywhere
#   PROMTOOL=/path/to/promtool deploy/prometheus/check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
promtool=${PROMTOOL:-promtool}
for tool in "$promtool" python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check.sh: $tool not found" >&2
    exit 127
  fi
done
set -x
"$promtool" check rules alerts.yml
"$promtool" test rules alerts.test.yml
"$promtool" check config prometheus.yml
python3 -m json.tool ../grafana/dashboards/rescind.json >/dev/null
