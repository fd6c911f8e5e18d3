#!/usr/bin/env bash
# gRPC benchmark: reprieve serve vs the grpcio + scikit-learn peer (benches/python/grpc_server.py), both driven by
# the same Rust load generator (crates/reprieve-loadgen) with the same seeded requests, one server at a time.
#
#   benches/grpc.sh            # RUNS=3 DURATION=10s by default
#
# Scenarios per server: closed-loop max throughput of unary Score with 1 and with 100 objects per request, of
# ScoreStream with 100-object chunks, then open loop at half the measured unary (1 object) maximum; for ours also
# issue 5's floors (open loop at 5,000 calls/s, also with every verdict new; ScoreStream with every verdict new).
# Open-loop unary calls are released by the load generator's pacing thread (see crates/reprieve-loadgen). Results go
# to $BENCH_DIR/results.tsv and $BENCH_DIR/grpc/*.json. Everything listens on 127.0.0.1 only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
OURS_PORT="${OURS_PORT:-50071}"
THEIRS_PORT="${THEIRS_PORT:-50072}"
OUT="$BENCH_DIR/grpc"
mkdir -p "$OUT"
need_release_bins
need_venv

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "nothing listens on port $1"; return 1
}

# load NAME PORT ARGS...: one loadgen run, recorded.
load() {
  local name="$1" port="$2"; shift 2
  local json="$OUT/$name.json"
  log "$name (load $(load_avg)): loadgen $*"
  "$LOADGEN" --target "http://127.0.0.1:$port" --duration "$DURATION" --warmup "$WARMUP" --json "$json" "$@"
  local rps ops p50 p99 p999 failed
  read -r rps ops p50 p99 p999 failed < <("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency"]
print(r["requests_per_sec"], r["objects_per_sec"], l["p50_ms"], l["p99_ms"], l["p999_ms"], r["requests_failed"])' "$json")
  local base="${name%-run*}"
  record "$base" req_per_s "$rps"
  record "$base" objects_per_s "$ops"
  record "$base" p50_ms "$p50"
  record "$base" p99_ms "$p99"
  record "$base" p999_ms "$p999"
  record "$base" failed "$failed"
}

scenarios() {
  local who="$1" port="$2" conc1="$3"
  for run in $(seq 1 "$RUNS"); do
    load "grpc-$who-unary1-run$run" "$port" --mode unary --objects-per-request 1 --concurrency "$conc1"
    load "grpc-$who-unary100-run$run" "$port" --mode unary --objects-per-request 100 --concurrency 8
    load "grpc-$who-stream100-run$run" "$port" --mode stream --objects-per-request 100 --concurrency 8
  done
  # Open loop at half the median closed-loop maximum, latency from the intended send time.
  local max rate
  max=$(median "grpc-$who-unary1" req_per_s)
  rate=$(awk -v m="$max" 'BEGIN {printf "%.0f", m / 2}')
  load "grpc-$who-open-unary1" "$port" --mode unary --objects-per-request 1 --concurrency 64 --connections 8 --rate "$rate"
  record "grpc-$who-open-unary1" target_rate "$rate"
}

log "ours: reprieve serve on 127.0.0.1:$OURS_PORT (bundled model)"
RUST_LOG=warn "$REPRIEVE" serve --listen "127.0.0.1:$OURS_PORT" >"$OUT/ours-server.log" 2>&1 &
SERVER_PID=$!
wait_port "$OURS_PORT"
scenarios ours "$OURS_PORT" 32
# Issue 5's floors (ours only): unary p99 at 5,000 calls/s open loop, and ScoreStream objects/s; the stream also
# with every verdict new (--fresh-verdicts), so that the audit trail writes each one instead of finding the
# repeated requests' verdicts already recorded.
load "grpc-ours-open5000-unary1" "$OURS_PORT" --mode unary --objects-per-request 1 --concurrency 64 --rate 5000
load "grpc-ours-stream100-fresh" "$OURS_PORT" --mode stream --objects-per-request 100 --concurrency 8 --fresh-verdicts
# The same open loop with every verdict new: each call then waits for a group commit and its fsync.
load "grpc-ours-open5000-unary1-fresh" "$OURS_PORT" --mode unary --objects-per-request 1 --concurrency 64 --rate 5000 \
  --fresh-verdicts
stop_server

log "theirs: grpcio + scikit-learn on 127.0.0.1:$THEIRS_PORT"
(cd "$REPO/benches/python" && exec "$PY" grpc_server.py --port "$THEIRS_PORT" --workers 16) >"$OUT/theirs-server.log" 2>&1 &
SERVER_PID=$!
wait_port "$THEIRS_PORT"
scenarios theirs "$THEIRS_PORT" 32
stop_server

for s in unary1 unary100 stream100; do
  o=$(median "grpc-ours-$s" objects_per_s); t=$(median "grpc-theirs-$s" objects_per_s)
  printf '%-10s ours %12.0f objects/s   grpcio %10.0f objects/s   ratio %.1fx\n' "$s" "$o" "$t" \
    "$(awk -v a="$o" -v b="$t" 'BEGIN {print (b > 0 ? a / b : 0)}')"
done
