#!/usr/bin/env bash
# dales against the PyTorch reference, back to back on this machine, in one invocation.
#
#   bench/compare.sh                 # full: 100 timed steps per case, one epoch each
#   bench/compare.sh --quick         # smoke test: 5 timed steps, no epochs
#
# Environment: PYTHON (default /tmp/refvenv/bin/python, a venv with the reference's
# requirements: python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install -r
# ../shared/reference/requirements.txt), REFERENCE (default ../shared/reference),
# DALES (default: the release binary, built here), DATA (default Fashion-MNIST from
# dataset-fashion-mnist), OUT (default bench/out).
#
# Prints a ratio table (reference ms ÷ dales ms: > 1 means dales is faster) and writes the raw
# JSON of both sides and the table into $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

PYTHON="${PYTHON:-/tmp/refvenv/bin/python}"
REFERENCE="${REFERENCE:-../shared/reference}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
OUT="${OUT:-bench/out}"
mkdir -p "$OUT"

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  echo "error: $PYTHON cannot import torch; set PYTHON to a python with $REFERENCE/requirements.txt" >&2
  exit 2
fi
if [ ! -f "$REFERENCE/bench.py" ]; then
  echo "error: no bench.py in REFERENCE=$REFERENCE" >&2
  exit 2
fi
if [ -z "${DALES:-}" ]; then
  cargo build --release -q -p dales-cli
  DALES="${CARGO_TARGET_DIR:-target}/release/dales"
fi

batches=32,256,1024
if [ "$quick" = 1 ]; then
  dales_flags=(--quick)
  ref_flags=(--quick)
else
  dales_flags=(--data "$DATA")
  ref_flags=()
fi

# Peak resident memory (MiB) and wall seconds of a command, measured by GNU time.
measure() {
  local log="$1"; shift
  /usr/bin/time -f '%M %e' -o "$log.time" "$@" >"$log" 2>&1
  read -r kib secs <"$log.time"
  echo "$((kib / 1024)) $secs"
}

echo "== dales bench ($($DALES --version))" >&2
"$DALES" bench --json --batches "$batches" "${dales_flags[@]}" >"$OUT/dales.json"
echo "== reference bench.py (torch $("$PYTHON" -c 'import torch; print(torch.__version__)'))" >&2
"$PYTHON" "$REFERENCE/bench.py" --device cpu --kinds mlp,dann --batches "$batches" \
  "${ref_flags[@]}" >"$OUT/reference.json" 2>"$OUT/reference.log"

epoch_rows=""
if [ "$quick" = 0 ]; then
  echo "== one DANN epoch each, as a user runs it (wall time and peak RSS)" >&2
  rm -rf "$OUT/dales-epoch"
  read -r d_mib d_secs < <(measure "$OUT/dales-epoch.log" \
    "$DALES" train --preset dann --epochs 1 --data "$DATA" --out "$OUT/dales-epoch")
  read -r r_mib r_secs < <(measure "$OUT/reference-epoch.log" \
    "$PYTHON" "$REFERENCE/train_fashion.py" --epochs 1 --models dann --data-dir "$DATA")
  epoch_rows="$d_secs $d_mib $r_secs $r_mib"
fi

"$PYTHON" - "$OUT/dales.json" "$OUT/reference.json" "$epoch_rows" <<'EOF' | tee "$OUT/ratios.md"
import json, sys
dales = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))
epoch = sys.argv[3].split()
by_key = {(r["name"], r["batch"]): r for r in ref["results"] if r["device"] == "cpu"}
print(f"dales {dales['info']['dales']} ({dales['info']['backend']}) vs torch {ref['info']['torch']} "
      f"({ref['info']['threads']} threads), {ref['info']['platform']}")
print()
peak = dales["info"]["peak_gflops"]
how = "measured" if dales["info"].get("peak_measured") else "given"
print(f"fp32 peak: {peak:.1f} GFLOP/s ({how})")
print()
print("| case | batch | dales ms | reference ms | speed-up (ref ÷ dales) | dales GFLOP/s | % of peak |")
print("|---|---:|---:|---:|---:|---:|---:|")
for d in dales["results"]:
    r = by_key.get((d["name"], d["batch"]))
    ref_ms = f"{r['median_ms']:.3f}" if r else "–"
    ratio = f"{r['median_ms'] / d['median_ms']:.2f}×" if r else "–"
    print(f"| {d['name']} | {d['batch']} | {d['median_ms']:.3f} | {ref_ms} | {ratio} | "
          f"{d['gflops']:.1f} | {d['percent_of_peak']:.1f} % |")
if epoch:
    ds, dm, rs, rm = map(float, epoch)
    print()
    print("| one DANN Fashion-MNIST epoch (train command, end to end) | dales | reference | speed-up |")
    print("|---|---:|---:|---:|")
    print(f"| wall seconds | {ds:.1f} | {rs:.1f} | {rs / ds:.2f}× |")
    print(f"| peak RSS (MiB) | {dm:.0f} | {rm:.0f} | {rm / dm:.2f}× less |")
EOF
