#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 30) on stable Rust
# (`-s none`: no sanitizer), from the checked-in seeds; new inputs go to
# fuzz/corpus-run/ (git-ignored), so the seeds stay as checked in. Fails on
# the first crash; the input is left in fuzz/artifacts/<target>/.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^rescind-fuzz-targets$')
fi
echo "== building ${#targets[@]} fuzz targets"
cargo fuzz build -s none
for t in "${targets[@]}"; do
  mkdir -p "corpus-run/$t"
  echo "== fuzz $t for ${seconds}s"
  log="corpus-run/$t.log"
  rc=0
  cargo fuzz run -s none "$t" "corpus-run/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed (exit $rc): the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
