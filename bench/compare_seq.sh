#!/usr/bin/env bash
# The recurrent training steps of dales and the PyTorch reference, back to back per sequence
# length and model on this machine: ARUN and the per-neuron gamma RNN (the reference's
# GammaRnn, dales' rnn-gamma-het), batch 100, H 400, controller 50, Adam at 1e-4, synthetic
# inputs. The reference side is its own bench.py `bench_recurrent`, one process per case.
#
#   bench/compare_seq.sh                 # T = 28 and 100
#   bench/compare_seq.sh 28 100 400 784  # any lengths
#
# Environment: PYTHON, REFERENCE, DALES as for bench/compare.sh; STEPS timed steps per case
# (default 3); ARUN_MAX_T (default 400): above it the reference ARUN is not run (at T = 784
# it needs more than this machine's 24 GiB) and only dales' time is shown.
# Prints one row per (T, model): the medians, the ratio reference ÷ dales (> 1: dales is
# faster) and each process's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-/tmp/refvenv/bin/python}"
REFERENCE="${REFERENCE:-../shared/reference}"
STEPS="${STEPS:-3}"
ARUN_MAX_T="${ARUN_MAX_T:-400}"
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "error: $PYTHON cannot import torch; set PYTHON to a python with $REFERENCE/requirements.txt" >&2
  exit 2
fi
if [ -z "${DALES:-}" ]; then
  cargo build --release -q -p dales-cli
  DALES="${CARGO_TARGET_DIR:-target}/release/dales"
fi
lengths=("$@")
[ ${#lengths[@]} -eq 0 ] && lengths=(28 100)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The median ms of the last JSON line a command prints, and its peak RSS in MiB.
measure() {
  /usr/bin/time -f '%M' -o "$tmp/rss" "$@" 2>/dev/null | tail -1 >"$tmp/json"
  "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d.get("results", [d]); print(r[0]["median_ms"])' "$tmp/json"
  echo $(( $(cat "$tmp/rss") / 1024 ))
}

# The reference's own bench_recurrent for one model and length.
cat >"$tmp/reference.py" <<'PY'
import json, os, sys
import torch
sys.path.insert(0, sys.argv[1])
import bench
torch.set_num_threads(os.cpu_count())
which, t, steps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
print(json.dumps(bench.bench_recurrent(which, torch.device("cpu"), t, 1, steps)))
PY

printf '%-6s %-10s %12s %12s %8s %9s %9s\n' T model "ref ms" "dales ms" ratio "ref MiB" "dales MiB"
for t in "${lengths[@]}"; do
  for model in arun gamma_rnn; do
    ours=rnn-gamma-het
    [ "$model" = arun ] && ours=arun
    if [ "$model" = arun ] && [ "$t" -gt "$ARUN_MAX_T" ]; then
      ref_ms=-; ref_mib=-; ratio=-
    else
      { read -r ref_ms; read -r ref_mib; } < <(measure "$PYTHON" "$tmp/reference.py" \
        "$REFERENCE" "$model" "$t" "$STEPS")
    fi
    { read -r ms; read -r mib; } < <(measure "$DALES" bench --json --arun-seq "$t" \
      --seq-model "$ours" --seq-timed "$STEPS")
    [ "$ref_ms" != - ] && ratio=$("$PYTHON" -c "print(f'{$ref_ms / $ms:.2f}x')")
    printf '%-6s %-10s %12s %12.1f %8s %9s %9s\n' "$t" "$model" "$ref_ms" "$ms" "$ratio" "$ref_mib" "$mib"
  done
done
