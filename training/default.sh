#!/usr/bin/env bash
# Reproduces the bundled default model, models/default.json, from a seeded synthetic trace.
# Usage: training/default.sh [REPRIEVE_BINARY]   (default: cargo run --release -p reprieve-cli --)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then reprieve=("$1"); else reprieve=(cargo run --release -q -p reprieve-cli --); fi
work="${WORK_DIR:-$(mktemp -d)}"
"${reprieve[@]}" synth --config training/default-synth.toml --out-dir "$work/trace"
"${reprieve[@]}" train \
  --events "$work/trace/events.csv" \
  --inventory "$work/trace/inventory.csv" \
  --horizon 14d --step 7d --calibration-cuts 3 \
  --target-delete 0.01 --target-archive 0.05 \
  --name default --out models/default.json
echo "trace in $work/trace; model in models/default.json"
