#!/usr/bin/env bash
# Batch benchmark of `reprieve score` (wall time and peak RSS via /usr/bin/time -v) on synthetic Parquet data, and
# S3 server access log parse throughput. Data lives under $BENCH_DIR (default /var/tmp/reprieve-bench).
#
#   benches/batch.sh [SIZE...]      SIZE: 1m (1M objects / ~100M events), 10m (10M objects / ~100M events),
#                                   small (1M objects / ~10M events, the size the Python peers run on); default: 1m 10m
#   RUNS=3 benches/batch.sh 10m
#
# Synthetic data: `reprieve synth --format parquet` over a 365-day log; the events per object are set with the
# `mean_reads_per_day` knob (the read rate of the popular cohort; the other cohorts' reads follow from their
# schedules), from a TOML config written next to the data. Scoring time: the end of the log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_release_bins

DAYS=365
START=1767225600                       # 2026-01-01T00:00:00Z, synth's default
AT=$((START + DAYS * 86400))

# size -> "objects mean_reads_per_day" (calibrated on this generator: see benches/README.md).
# Over 365 days this generator gives about 10.1 + 14 * mean_reads_per_day events per object (measured on 50k
# objects: 0.2 -> 12.9, 1 -> 24.1, 4 -> 66.0).
declare -A SIZES=(
  [small]="1000000 0.2"
  [1m]="1000000 6.4"
  [10m]="10000000 0.02"
)

synth() {
  local size="$1" dir="$BENCH_DIR/synth-$1"
  read -r objects rate <<<"${SIZES[$size]}"
  if [[ -f "$dir/synth.json" ]]; then
    log "reusing $dir"
  else
    mkdir -p "$dir"
    printf 'mean_reads_per_day = %s\n' "$rate" >"$dir/knobs.toml"
    timed "synth-$size" "$REPRIEVE" synth --out-dir "$dir" --objects "$objects" --days "$DAYS" --start "$START" \
      --format parquet --config "$dir/knobs.toml"
  fi
  local events
  events=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["events"])' "$dir/synth.json" 2>/dev/null ||
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["events"])' "$dir/synth.json")
  record "synth-$size" objects "$objects"
  record "synth-$size" events "$events"
  log "synth-$size: $objects objects, $events events"
}

score() {
  local size="$1" dir="$BENCH_DIR/synth-$1" out="$BENCH_DIR/out-$1"
  mkdir -p "$out"
  for run in $(seq 1 "$RUNS"); do
    TIMED_STDERR="$out/score-run$run.log" RUST_LOG=info timed "score-$size" "$REPRIEVE" score \
      --inventory "$dir/inventory.parquet" --logs "$dir/events.parquet" --at "$AT" --out "$out/scores.parquet" \
      --report "$out/report.md"
  done
  log "score-$size: median $(median "score-$size" wall_s)s, peak RSS $(median "score-$size" peak_rss_mib) MiB"
}

s3_parse() {
  local dir="$BENCH_DIR/synth-small" log_file="$BENCH_DIR/s3/s3-access.log"
  mkdir -p "$BENCH_DIR/s3"
  # S3_LOG_BIN: an already built benches/s3_log.rs binary (target/release/deps/s3_log-*), to skip cargo.
  local s3_log=(cargo bench --workspace --bench s3_log --)
  if [[ -n "${S3_LOG_BIN:-}" ]]; then
    s3_log=("$S3_LOG_BIN")
  else
    (cd "$REPO" && cargo bench --workspace --bench s3_log --no-run)
  fi
  if [[ ! -s "$log_file" ]]; then
    # About 6M lines, ~2.5 GB: large enough that the page cache, not the parse, is what is warmed.
    (cd "$REPO" && "${s3_log[@]}" gen "$dir/events.parquet" "$log_file" 6000000)
  fi
  local out
  out=$(cd "$REPO" && "${s3_log[@]}" parse "$log_file" "$RUNS")
  echo "$out"
  local json
  json=$(grep '^{' <<<"$out")
  record s3-parse streaming_mb_s "$(sed -E 's/.*"median_streaming_mb_s":([0-9.]+).*/\1/' <<<"$json")"
  record s3-parse in_memory_mb_s "$(sed -E 's/.*"median_in_memory_mb_s":([0-9.]+).*/\1/' <<<"$json")"
}

sizes=("$@")
[[ ${#sizes[@]} -eq 0 ]] && sizes=(1m 10m)
for size in "${sizes[@]}"; do
  if [[ "$size" == s3 ]]; then
    synth small
    s3_parse
    continue
  fi
  synth "$size"
  # SYNTH_ONLY=1: generate the data now, measure later (e.g. while the machine is quieter).
  [[ -n "${SYNTH_ONLY:-}" ]] || score "$size"
done
log "results: $RESULTS"
