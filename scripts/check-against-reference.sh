#!/usr/bin/env bash
# Check that PyTorch reads a dales run's checkpoint as dales does: the reference
# (shared/reference/check_checkpoint.py) rebuilds the model from checkpoint.safetensors and
# compares its logits on the first 8 test images with those of `dales eval`.
#
#   scripts/check-against-reference.sh RUN_DIR [PYTHON]
#
# PYTHON defaults to `python3`; it needs torch, numpy and safetensors
# (pip install -r shared/reference/requirements.txt).
set -euo pipefail
run_dir=${1:?usage: $0 RUN_DIR [PYTHON]}
python=${2:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
reference=${DALES_REFERENCE:-$here/../shared/reference}
kind=$(sed -n 's/^kind = "\(.*\)"/\1/p' "$run_dir/config.toml" | head -1)
logits=$(mktemp --suffix=.json)
trap 'rm -f "$logits"' EXIT
cargo run --quiet --release -p dales-cli -- eval "$run_dir" --logits-out "$logits"
"$python" "$reference/check_checkpoint.py" "$run_dir/checkpoint.safetensors" --kind "$kind" \
  --compare "$logits"
