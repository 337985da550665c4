#!/usr/bin/env bash
# The sweep targets, measured on this machine:
#   1. planning the 1000-run sweep configs/sweeps/colei-ei-size.toml (target ≤ 1 s) and
#      writing its sbatch script (one file, one array);
#   2. the overhead of `dales sweep task` over `dales train` for the same small run (target
#      ≤ 1 s), in alternating rounds;
#   3. `dales sweep collect` over 1000 finished run directories, through a manifest and as
#      runs made by hand (target ≤ 5 s).
#
#   bench/sweep.sh [ROUNDS]          # default 5 rounds for 2
#
# Environment: DALES (default: the release binary, built here), OUT (default bench/out/sweep).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
OUT=${OUT:-bench/out/sweep}
source bench/timing.sh
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)


echo "== 1. plan 1000 runs"
echo "sweep plan: $(seconds "$DALES" sweep plan configs/sweeps/colei-ei-size.toml) s"
echo "sweep slurm (manifest + script): $(seconds "$DALES" sweep slurm configs/sweeps/colei-ei-size.toml --out "$OUT/collect") s"
echo "script: $(ls "$OUT/collect/slurm") — $(grep -c . "$OUT/collect/slurm/sweep.sbatch") lines, $(grep '^#SBATCH --array' "$OUT/collect/slurm/sweep.sbatch")"

echo "== 2. sweep task against train ($rounds rounds, alternating)"
cat >"$OUT/small.toml" <<TOML
base = "mlp"
[set]
epochs = 1
data.limit_train = 2000
TOML
"$DALES" sweep slurm "$OUT/small.toml" --out "$OUT/task" >/dev/null 2>&1
"$DALES" sweep task "$OUT/task" 0 >/dev/null 2>&1
cp "$OUT/task/mlp_seed1/config.toml" "$OUT/small-run.toml"
task=() train=()
for _ in $(seq "$rounds"); do
  rm -rf "$OUT/task/mlp_seed1"
  task+=("$(seconds "$DALES" sweep task "$OUT/task" 0)")
  train+=("$(seconds "$DALES" train --config "$OUT/small-run.toml" --out "$OUT/train" --overwrite)")
done
t=$(echo "${task[@]}" | median)
r=$(echo "${train[@]}" | median)
echo "sweep task: ${task[*]} s (median $t)"
echo "train:      ${train[*]} s (median $r)"
echo "overhead: $(awk -v a="$t" -v b="$r" 'BEGIN { printf "%.3f", a - b }') s"

echo "== 3. collect 1000 finished runs"
# Every run of the 1000-run manifest gets the small run's metrics and summary; the hand-made
# copy also gets its configuration, and no manifest.
python3 - "$OUT" <<'PY'
import json, os, shutil, sys
out = sys.argv[1]
done = os.path.join(out, "task", "mlp_seed1")
manifest = json.load(open(os.path.join(out, "collect", "sweep.json")))
for run in manifest["runs"]:
    for root in ("collect", "hand"):
        d = os.path.join(out, root, run["dir"])
        os.makedirs(d, exist_ok=True)
        for f in ("metrics.csv", "summary.json"):
            shutil.copy(os.path.join(done, f), d)
        if root == "hand":
            open(os.path.join(d, "config.toml"), "w").write(run["config"])
PY
echo "collect, manifest: $(seconds "$DALES" sweep collect "$OUT/collect") s"
echo "collect, by hand:  $(seconds "$DALES" sweep collect "$OUT/hand") s"
"$DALES" sweep collect "$OUT/collect" 2>/dev/null | grep -c '^| ' | awk '{ print "table lines:", $1 }'
