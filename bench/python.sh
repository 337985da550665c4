#!/usr/bin/env bash
# The Python package's targets, measured on this machine:
#   1. calling overhead: `dales.train` of a run against `dales train` of the same run (target:
#      within 2 % of the CLI's wall time), alternating rounds, medians; both release builds;
#   2. `Run.metrics` of a 50-epoch run (target ≤ 50 ms).
#
#   bench/python.sh [ROUNDS]        # default 5 rounds for 1
#
# Environment: PYTHON (default: a venv in bench/out/python-venv with the release wheel built
# here), DALES (default: the release binary, built here), OUT (default bench/out/python).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
OUT=${OUT:-bench/out/python}
target="${CARGO_TARGET_DIR:-target}"
source bench/timing.sh
if [ -z "${PYTHON:-}" ]; then
  venv=bench/out/python-venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "maturin>=1.9.4,<2" numpy
  rm -rf "$target/wheels-release"
  "$venv/bin/maturin" build --release -m crates/dales-py/Cargo.toml -i "$venv/bin/python" \
    -o "$target/wheels-release"
  "$venv/bin/pip" install -q --force-reinstall --no-deps "$target"/wheels-release/dales-*.whl
  PYTHON="$venv/bin/python"
fi
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The run: the DANN preset for 2 epochs on Fashion-MNIST, no progress bar in either (the
# CLI's hides itself when stderr is not a terminal).
echo "== 1. dales.train against dales train ($rounds rounds, alternating; $(nproc) CPUs)"
cli=() py=()
for i in $(seq "$rounds"); do
  c=$(seconds "$DALES" train --preset dann --epochs 2 --out "$OUT/cli-$i")
  p=$(seconds "$PYTHON" -c "import sys, dales; dales.train('dann', epochs=2, out=sys.argv[1], progress=False)" "$OUT/py-$i")
  echo "round $i: dales train $c s, dales.train $p s"
  cli+=("$c") py+=("$p")
  cmp "$OUT/cli-$i/checkpoint.safetensors" "$OUT/py-$i/checkpoint.safetensors"
done
mc=$(echo "${cli[*]}" | median) mp=$(echo "${py[*]}" | median)
echo "medians: dales train $mc s, dales.train $mp s, ratio $(awk -v a="$mp" -v b="$mc" 'BEGIN { printf "%.4f", a / b }')"

echo "== 2. Run.metrics of a 50-epoch run"
"$PYTHON" - "$OUT/fifty" <<'EOF'
import sys, timeit, dales
run = dales.train("mlp", epochs=50, out=sys.argv[1], progress=False,
                  **{"data.limit_train": 500, "model.hidden": [16]})
assert len(run.metrics["epoch"]) == 50
fresh = min(timeit.repeat(lambda: dales.Run(sys.argv[1]).metrics, number=1, repeat=20))
again = min(timeit.repeat(lambda: run.metrics, number=1, repeat=20))
print(f"Run(path).metrics: {fresh * 1e3:.2f} ms (open + load); run.metrics: {again * 1e3:.2f} ms")
EOF
