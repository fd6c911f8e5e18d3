# Shared helpers of benches/batch.sh, benches/grpc.sh and benches/run.sh (sourced, not run).
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/reprieve-target}"
BENCH_DIR="${BENCH_DIR:-/var/tmp/reprieve-bench}"
VENV="${VENV:-/var/tmp/reprieve-venv}"
PY="$VENV/bin/python"
REPRIEVE="${REPRIEVE:-$CARGO_TARGET_DIR/release/reprieve}"
LOADGEN="${LOADGEN:-$CARGO_TARGET_DIR/release/reprieve-loadgen}"
RUNS="${RUNS:-3}"
RESULTS="${RESULTS:-$BENCH_DIR/results-$(date +%Y%m%d-%H%M%S).tsv}"
export RESULTS
mkdir -p "$BENCH_DIR"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# record NAME METRIC VALUE [NOTE]: one measured figure, with the load average at the time.
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date +%FT%T)" "$1" "$2" "$3" "$(load_avg)" "${4:-}" >>"$RESULTS"
}

# timed NAME CMD...: runs CMD under /usr/bin/time -v, records wall seconds and peak RSS (MiB). The command's
# stderr goes to $TIMED_STDERR when set.
timed() {
  local name="$1"; shift
  local tv="$BENCH_DIR/time-$name.txt"
  log "$name (load $(load_avg)): $*"
  if [[ -n "${TIMED_STDERR:-}" ]]; then
    /usr/bin/time -v -o "$tv" "$@" 2>"$TIMED_STDERR"
  else
    /usr/bin/time -v -o "$tv" "$@"
  fi
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$tv")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$tv")
  record "$name" wall_s "$wall"
  record "$name" peak_rss_mib "$rss"
  log "$name: ${wall}s, peak RSS ${rss} MiB"
}

# median NAME METRIC: the median of every recorded value of NAME/METRIC.
median() {
  awk -F'\t' -v n="$1" -v m="$2" '$2==n && $3==m {print $4}' "$RESULTS" | sort -g |
    awk '{v[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

need_release_bins() {
  if [[ ! -x "$REPRIEVE" || ! -x "$LOADGEN" ]]; then
    log "building release binaries (cargo build --release --workspace --bins)"
    (cd "$REPO" && cargo build --release --workspace --bins)
  fi
}

need_venv() {
  if [[ ! -x "$PY" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$REPO/benches/python/requirements.txt"
  fi
}
