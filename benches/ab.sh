#!/usr/bin/env bash
# Two builds of `reprieve` on the same batch job, one run each in turn (A B A B ...), so that a host whose speed
# drifts during the series slows both alike: prints every run (wall, peak RSS, each stage's wall/CPU seconds) and
# the median of the run-by-run ratios B/A. Made for the 10M-object job of `benches/batch.sh 10m` (run it once
# first to generate the data); any size batch.sh made works.
#
#   benches/ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SIZE]     ROUNDS default 5, SIZE default 10m
#
# Keep a build for later comparison by copying it: `cp $CARGO_TARGET_DIR/release/reprieve /var/tmp/reprieve-old`
# (the binary is self-contained). Outputs go to $BENCH_DIR/ab-{a,b}.* and are overwritten each run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [[ $# -lt 2 ]]; then
  echo "usage: benches/ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SIZE]" >&2
  exit 2
fi
A="$1" B="$2" ROUNDS="${3:-5}" SIZE="${4:-10m}"
DATA="$BENCH_DIR/synth-$SIZE"
for bin in "$A" "$B"; do
  [[ -x "$bin" ]] || { echo "ab.sh: $bin is not an executable" >&2; exit 2; }
done
[[ -f "$DATA/inventory.parquet" && -f "$DATA/events.parquet" ]] ||
  { echo "ab.sh: no data in $DATA (run benches/batch.sh $SIZE first)" >&2; exit 2; }
AT=$((1767225600 + 365 * 86400))       # the end of batch.sh's 365-day log

# one TAG BINARY: one run; prints "wall rss_mib stages..." and records wall and RSS under ab-TAG.
one() {
  local tag="$1" bin="$2" err="$BENCH_DIR/ab-$1.err"
  RUST_LOG=reprieve_batch=debug /usr/bin/time -v "$bin" score --inventory "$DATA/inventory.parquet" \
    --logs "$DATA/events.parquet" --at "$AT" --out "$BENCH_DIR/ab-$tag.parquet" --report "$BENCH_DIR/ab-$tag.md" \
    >/dev/null 2>"$err"
  local wall rss stages
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$err")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$err")
  # "stage done ... wall_seconds=W cpu_seconds=C" lines of the debug log, as W/C.
  stages=$(sed -n 's/.*stage done.*wall_seconds=\([0-9.]*\) cpu_seconds=\([0-9.]*\).*/\1 \2/p' "$err" |
    awk '{printf "%.1f/%.1f ", $1, $2}')
  record "ab-$tag" wall_s "$wall"
  record "ab-$tag" peak_rss_mib "$rss"
  echo "$wall $rss $stages"
}

log "A = $A"
log "B = $B"
log "$ROUNDS rounds on $DATA; stages are wall/CPU seconds: inventory, events, prefix activity and order, scoring and writing"
ratios=()
for r in $(seq 1 "$ROUNDS"); do
  read -r wa ra sa <<<"$(one a "$A")"
  log "round $r A: ${wa}s, ${ra} MiB, $sa"
  read -r wb rb sb <<<"$(one b "$B")"
  log "round $r B: ${wb}s, ${rb} MiB, $sb"
  ratios+=("$(awk -v a="$wa" -v b="$wb" 'BEGIN {printf "%.3f", b / a}')")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "A median $(median ab-a wall_s) s, B median $(median ab-b wall_s) s; B/A run by run: ${ratios[*]}; median $(med "${ratios[@]}")"
echo "results: $RESULTS"
