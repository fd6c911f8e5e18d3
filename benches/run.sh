#!/usr/bin/env bash
# Ours vs theirs, side by side, on the same files and requests; prints the ratios against the floors of issue 7.
#
#   benches/run.sh                 # everything: scoring core, batch vs pandas/polars, gRPC vs grpcio
#   benches/run.sh core batch grpc # any subset, in that order
#   RUNS=3 CMP_SIZE=small benches/run.sh batch
#
# Needs: the release build (built here if missing: cargo build --release --workspace --bins, ~16 min on 2 cores)
# and a venv with benches/python/requirements.txt at $VENV (created if missing). Data under $BENCH_DIR.
# Each measurement runs $RUNS times (default 3); the figures quoted are medians. Every figure is appended, with
# the load average when it was taken, to $RESULTS (a TSV under $BENCH_DIR).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
CMP_SIZE="${CMP_SIZE:-small}"
parts=("$@")
[[ ${#parts[@]} -eq 0 ]] && parts=(core batch grpc)
need_release_bins
need_venv
log "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB; load $(load_avg)"
log "results: $RESULTS"

core() {
  local out="$BENCH_DIR/criterion-core.txt"
  (cd "$REPO" && cargo bench --workspace --bench core) 2>&1 | tee "$out" >&2
  # criterion: "<name>  time: [...]" then "thrpt: [lo mid hi]"; keep the middle estimate, in objects/s.
  awk '
    /^[a-z_]+\/[^ ]+/ {name=$1}
    /thrpt:/ {
      gsub(/[\[\]]/, ""); v=$4; u=$5
      m = (u ~ /^G/) ? 1e9 : (u ~ /^M/) ? 1e6 : (u ~ /^K/) ? 1e3 : 1
      printf "%s\t%.0f\t%s\n", name, v*m, u
    }' "$out" | while IFS=$'\t' read -r name value unit; do
    if [[ "$unit" == *B/s ]]; then record "bench-$name" bytes_per_s "$value"; else record "bench-$name" per_s "$value"; fi
  done
}

batch() {
  "$REPO/benches/batch.sh" "$CMP_SIZE"
  local dir="$BENCH_DIR/synth-$CMP_SIZE" out="$BENCH_DIR/out-$CMP_SIZE"
  local at
  at=$("$PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; print(c["start"] + c["days"] * 86400)' "$dir/synth.json")
  for run in $(seq 1 "$RUNS"); do
    (cd "$REPO/benches/python" && timed "pandas-$CMP_SIZE" "$PY" batch_pandas.py --inventory "$dir/inventory.parquet" \
      --events "$dir/events.parquet" --at "$at" --out "$out/pandas.parquet") >>"$out/pandas.jsonl"
    (cd "$REPO/benches/python" && timed "polars-$CMP_SIZE" "$PY" batch_polars.py --inventory "$dir/inventory.parquet" \
      --events "$dir/events.parquet" --at "$at" --out "$out/polars.parquet") >>"$out/polars.jsonl"
  done
  "$PY" "$REPO/benches/python/crosscheck.py" "$out/scores.parquet" "$out/pandas.parquet" "$out/polars.parquet"
}

grpc() {
  "$REPO/benches/grpc.sh"
}

for p in "${parts[@]}"; do "$p"; done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a / b}'; }
echo
echo "== Summary (medians of $RUNS runs; results in $RESULTS)"
if [[ " ${parts[*]} " == *" core "* ]]; then
  c=$(median bench-core/mixed_1024 per_s); e=$(median bench-engine/score/mixed_1024 per_s)
  echo "scoring core (features+model+policy), 1 core:  $c objects/s (floor 2000000: $( [[ "$c" != NA ]] && awk -v c="$c" 'BEGIN {print (c >= 2e6 ? "met" : "MISSED")}'))"
  echo "whole engine (verdict with id and contributions): $e objects/s"
fi
if [[ " ${parts[*]} " == *" batch "* ]]; then
  o=$(median "score-$CMP_SIZE" wall_s); pd=$(median "pandas-$CMP_SIZE" wall_s); pl=$(median "polars-$CMP_SIZE" wall_s)
  echo "batch ($CMP_SIZE): ours ${o}s, pandas+sklearn ${pd}s, polars+sklearn ${pl}s"
  echo "  ours vs pandas: $(ratio "$pd" "$o")x (floor 5x)   ours vs polars: $(ratio "$pl" "$o")x (floor 1.5x)"
  echo "  peak RSS MiB: ours $(median "score-$CMP_SIZE" peak_rss_mib), pandas $(median "pandas-$CMP_SIZE" peak_rss_mib), polars $(median "polars-$CMP_SIZE" peak_rss_mib)"
fi
if [[ " ${parts[*]} " == *" grpc "* ]]; then
  for s in unary1 unary100 stream100; do
    o=$(median "grpc-ours-$s" objects_per_s); t=$(median "grpc-theirs-$s" objects_per_s)
    echo "gRPC $s max throughput: ours $o objects/s, grpcio $t objects/s: $(ratio "$o" "$t")x (floor 10x for unary)"
  done
fi
