#!/usr/bin/env python3
"""Merge finished dales runs with earlier seeds into the README's reproduction table.

Usage: scripts/merge-seeds.py RUNS_DIR SEEDS.json

RUNS_DIR holds run directories named {kind}-seed{s} (as `dales reproduce` writes them).
SEEDS.json (docs/dann2021_seeds.json) records each finished run's final test error and wall
time, {"kind": {"seed": {"final": %, "seconds": s}}}, so that seeds trained on other machines
or sessions stay in the table; finished runs found in RUNS_DIR are added to it (the file is
rewritten). Prints the markdown table: test error % after the last epoch, mean ± sample sd.
"""
import csv
import json
import statistics
import sys
from pathlib import Path

KINDS = [("mlp", "MLP"), ("layernorm", "LayerNorm MLP"), ("columnei", "ColumnEI"),
         ("dann", "**DANN**"), ("dann-nocorr", "DANN, no correction"),
         ("dann_dngd", "DANN, d-NGD (batch 250)")]


def finished(run: Path):
    summary = json.loads((run / "summary.json").read_text())
    if not summary.get("finished"):
        return None
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return {"final": round(float(rows[-1]["test_error"]), 4),
            "epochs": int(rows[-1]["epoch"]),
            "seconds": round(summary["wall_seconds"], 1)}


def main():
    runs, path = Path(sys.argv[1]), Path(sys.argv[2])
    seeds = json.loads(path.read_text())
    for kind, _ in KINDS:
        for run in sorted(runs.glob(f"{kind}-seed*")):
            f = finished(run)
            if f is not None:
                seeds.setdefault(kind, {})[run.name.rsplit("seed", 1)[1]] = f
    path.write_text(json.dumps(seeds, indent=1, sort_keys=True) + "\n")
    print("| model | seeds | test error % after epoch 50, mean ± sd | per seed |")
    print("|---|---|---|---|")
    for kind, label in KINDS:
        per = seeds.get(kind, {})
        order = sorted(per, key=int)
        finals = [per[s]["final"] for s in order]
        if not finals:
            continue
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        each = ", ".join(f"{v:.2f}" for v in finals)
        print(f"| {label} | {', '.join(order)} | {statistics.mean(finals):.2f} ± {sd:.2f} | {each} |")


if __name__ == "__main__":
    main()
