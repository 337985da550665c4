"""The Python package against the command-line tool, on Fashion-MNIST (Debian's
dataset-fashion-mnist). The CLI binary is $DALES_BIN, else the workspace's debug build."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dales

FASHION = Path("/usr/share/datasets/fashion-mnist")
ROOT = Path(__file__).resolve().parents[3]


def dales_bin() -> str:
    if "DALES_BIN" in os.environ:
        return os.environ["DALES_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "dales")


def cli(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([dales_bin(), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


# A small feed-forward run on real data: 2000 training images, 2 epochs.
SMALL = {"model.hidden": [64], "data.limit_train": 2000, "batch_size": 32}

SMALL_TOML = """\
seed = 3
epochs = 2
batch_size = 32

[data]
limit_train = 2000

[model]
kind = "dann"
n_in = 784
hidden = [64]
n_out = 10
ei_ratio = 10

[optim]
lr = 0.01
"""


def test_train_equals_the_cli_for_the_same_config(tmp_path: Path) -> None:
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML)
    run = dales.train(config=config, out=tmp_path / "py", progress=False)
    cli("train", "--config", str(config), "--out", str(tmp_path / "cli"))
    theirs = dales.Run(tmp_path / "cli")
    assert run.config == theirs.config
    ours_m, theirs_m = run.metrics, theirs.metrics
    assert list(ours_m) == list(theirs_m)
    assert len(ours_m["epoch"]) == 2
    for column in ours_m:
        if column != "seconds":
            np.testing.assert_array_equal(ours_m[column], theirs_m[column], err_msg=column)
    ckpt = "checkpoint.safetensors"
    assert (tmp_path / "py" / ckpt).read_bytes() == (tmp_path / "cli" / ckpt).read_bytes()
    assert run.summary["finished"] and run.summary["epochs_done"] == 2
    # The metrics are the CSV's columns, as written.
    header = (tmp_path / "py" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert list(ours_m) == header


def test_overrides_and_dictionaries_configure_the_run(tmp_path: Path) -> None:
    base = dales.config("mlp", **SMALL)
    assert base["model"]["hidden"] == [64] and base["data"]["limit_train"] == 2000
    base["epochs"] = 1
    run = dales.train(config=base, out=tmp_path / "dict", progress=False, **{"optim.lr": 0.05})
    assert run.config["optim"]["lr"] == 0.05
    assert run.config["model"]["kind"] == "mlp" and run.config["epochs"] == 1
    assert run.summary["epochs_done"] == 1
    weights = run.checkpoint()
    assert weights["hidden.0.weight"].shape == (64, 784)
    assert weights["output.weight"].shape == (10, 64)


def read_idx_images(path: Path, n: int) -> np.ndarray:
    with gzip.open(path) as f:
        data = f.read()
    count, rows, cols = np.frombuffer(data[4:16], dtype=">u4")
    assert count >= n
    pixels = np.frombuffer(data[16 : 16 + n * rows * cols], dtype=np.uint8)
    return pixels.reshape(n, rows, cols).astype(np.float32) / 255.0


def test_model_forward_equals_eval_logits(tmp_path: Path) -> None:
    run = dales.train("dann", epochs=1, seed=5, out=tmp_path / "run", progress=False, **SMALL)
    out = tmp_path / "logits.json"
    cli("eval", str(run.path), "--logits-out", str(out))
    want = np.array(json.loads(out.read_text())["logits"])
    images = read_idx_images(FASHION / "t10k-images-idx3-ubyte.gz", len(want))
    model = run.model()
    for x in (images, images.reshape(len(want), 784)):
        got = model.forward(x)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert list(model.predict(images)) == list(np.argmax(want, axis=1))
    with pytest.raises(ValueError, match=r"\(batch, 784\)"):
        model.forward(np.zeros((2, 27, 28)))


def test_checkpoint_arrays_are_the_safetensors_tensors(tmp_path: Path) -> None:
    import safetensors.numpy as safetensors

    run = dales.train("dann", epochs=1, out=tmp_path / "run", progress=False, **SMALL)
    ours = run.checkpoint()
    theirs = safetensors.load_file(str(run.path / "checkpoint.safetensors"))
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    assert run.checkpoint_metadata()["format"].startswith("dales-ff/")


def test_plot_is_a_png_of_the_curves(tmp_path: Path) -> None:
    run = dales.train("mlp", epochs=2, out=tmp_path / "run", progress=False, **SMALL)
    png = run.plot()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png._repr_png_() == bytes(png)
    width, height = np.frombuffer(png[16:24], dtype=">u4")
    assert (width, height) == (1280, 480)  # two panels: loss and error


def test_a_bad_key_raises_value_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="optim.lrr") as e:
        dales.train("mlp", out=tmp_path / "bad", **{"optim.lrr": 0.1})
    assert isinstance(e.value, dales.DalesError)
    with pytest.raises(ValueError, match="optim.lr"):
        dales.train("mlp", out=tmp_path / "bad", **{"optim.lr": -1.0})
    with pytest.raises(ValueError, match="no-such-preset"):
        dales.train("no-such-preset", out=tmp_path / "bad")
    with pytest.raises(ValueError, match="device"):
        dales.train("mlp", out=tmp_path / "bad", device="tpu")
    assert not (tmp_path / "bad").exists()


def test_a_missing_data_dir_raises_os_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    with pytest.raises(OSError, match=str(missing)) as e:
        dales.train("mlp", data=missing, out=tmp_path / "run", progress=False)
    assert isinstance(e.value, dales.DalesError)
    with pytest.raises(OSError, match="no-such-run"):
        dales.Run(tmp_path / "no-such-run")


def test_an_existing_run_is_refused_unless_overwritten(tmp_path: Path) -> None:
    dales.train("mlp", epochs=1, out=tmp_path / "run", progress=False, **SMALL)
    with pytest.raises(OSError, match="run"):
        dales.train("mlp", epochs=1, out=tmp_path / "run", progress=False, **SMALL)
    dales.train("mlp", epochs=1, out=tmp_path / "run", overwrite=True, progress=False, **SMALL)


INTERRUPTED = """
import signal, sys, dales
# Python's own Ctrl-C handler, as in a terminal or a Jupyter kernel (a shell's background job
# starts with SIGINT ignored, and Python then keeps it ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
def progress(kind, epoch, epochs, batch, batches, loss, error):
    if kind == "step" and epoch == 2 and batch > 0:
        print("stepping", flush=True)
try:
    dales.train("dann", epochs=3, seed=7, out=sys.argv[1], progress=progress, **{config})
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(0)
print("finished", flush=True)
"""


def test_sigint_saves_the_run_and_resume_finishes_it_identically(tmp_path: Path) -> None:
    config = {"model.hidden": [64], "data.limit_train": 20000, "batch_size": 32}
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED.replace("{config}", repr(config)))
    stopped = tmp_path / "stopped"
    child = subprocess.Popen(
        [sys.executable, str(script), str(stopped)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "stepping"
    child.send_signal(signal.SIGINT)
    rest = child.stdout.read()
    assert child.wait(timeout=120) == 0
    assert "KeyboardInterrupt" in rest and "finished" not in rest
    run = dales.Run(stopped)
    assert run.summary["epochs_done"] == 1 and not run.summary["finished"]
    run.resume(progress=False)
    assert run.summary["finished"] and run.summary["epochs_done"] == 3
    whole = dales.train("dann", epochs=3, seed=7, out=tmp_path / "whole", progress=False, **config)
    ckpt = "checkpoint.safetensors"
    assert (stopped / ckpt).read_bytes() == (whole.path / ckpt).read_bytes()


def test_the_quickstart_notebook_runs(tmp_path: Path) -> None:
    import nbclient
    import nbformat

    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)


def read_csv(path: Path) -> list:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def test_spectrum_equals_the_cli(tmp_path: Path) -> None:
    ours = dales.spectrum(["colei", "rnn"], hidden=40, ratio=4, seeds=2)
    cli("spectrum", "--model", "colei,rnn", "--hidden", "40", "--ratio", "4", "--seeds", "2",
        "--out", str(tmp_path / "cli"))
    theirs = read_csv(tmp_path / "cli" / "spectrum_summary.csv")
    assert [(s["label"], s["seed"]) for s in ours] == [(t["label"], int(t["seed"])) for t in theirs]
    for s, t in zip(ours, theirs):
        assert s["nse"] == pytest.approx(float(t["nse"]), rel=1e-12)
        assert s["spectral_radius"] == pytest.approx(float(t["spectral_radius"]), rel=1e-12)
        assert s["singular_values"][0] == pytest.approx(float(t["sigma_max"]), rel=1e-12)
        modulus = np.hypot(s["eigenvalues_re"], s["eigenvalues_im"])
        assert len(modulus) == 40 and modulus.max() == pytest.approx(s["spectral_radius"])
    with pytest.raises(ValueError, match="no-such-cell"):
        dales.spectrum(["no-such-cell"])
    with pytest.raises(ValueError, match="seeds"):
        dales.spectrum(["rnn"], seeds=0)


@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory: pytest.TempPathFactory) -> dales.Run:
    out = tmp_path_factory.mktemp("seq") / "rnn"
    return dales.train("rnn-relu-small", epochs=1, out=out, progress=False,
                       **{"data.limit_train": 1000})


def test_robustness_equals_the_cli(sequence_run: dales.Run, tmp_path: Path) -> None:
    [ours] = dales.robustness(sequence_run.path, xi=[0, 5], limit=200)
    cli("robustness", str(sequence_run.path), "--xi", "0,5", "--limit", "200",
        "--out", str(tmp_path / "cli"))
    theirs = read_csv(tmp_path / "cli" / "robustness.csv")
    assert [float(t["accuracy"]) for t in theirs] == pytest.approx(
        [round(a, 2) for a in ours["accuracy"]] + [round(ours["sin_accuracy"], 2)], abs=1e-9)
    assert list(ours["xi"]) == [0, 5]
    with pytest.raises(ValueError, match="drive"):
        dales.robustness(sequence_run.path, drive="sideways")


def test_analyses_equal_the_cli(sequence_run: dales.Run, tmp_path: Path) -> None:
    ours = dales.analyze.jacobian(sequence_run.path, [0, 5], sequences=10)
    cli("analyze", "jacobian", str(sequence_run.path), "--xi", "0,5", "--sequences", "10",
        "--out", str(tmp_path / "cli"))
    theirs = read_csv(tmp_path / "cli" / "jacobian.csv")
    np.testing.assert_allclose(ours["inf_norm"], [float(t["inf_norm"]) for t in theirs], rtol=1e-12)
    np.testing.assert_allclose(ours["spectral_norm"], [float(t["spectral_norm"]) for t in theirs], rtol=1e-12)
    traces = dales.analyze.traces(sequence_run.path, [0, 5], sequences=10)
    assert traces["h_mean"].shape == (2, 49) and np.isfinite(traces["h_mean"]).all()
    with pytest.raises(OSError, match="no-such-run"):
        dales.analyze.jacobian(tmp_path / "no-such-run")


def test_collect_equals_the_cli(tmp_path: Path) -> None:
    for seed in (1, 2):
        dales.train("mlp", epochs=1, seed=seed, out=tmp_path / "runs" / f"mlp-{seed}",
                    progress=False, **SMALL)
    ours = dales.collect(tmp_path / "runs", metric="final_test_loss")
    cli("sweep", "collect", str(tmp_path / "runs"), "--metric", "final_test_loss")
    theirs = json.loads((tmp_path / "runs" / "collect.json").read_text())
    assert ours == theirs
    [point] = ours["points"]
    assert sorted(point["seeds"]) == [1, 2] and ours["metric"] == "final_test_loss"
    losses = [dales.Run(tmp_path / "runs" / f"mlp-{s}").summary["final_test_loss"] for s in (1, 2)]
    assert point["mean"] == pytest.approx(np.mean(losses))
    with pytest.raises(ValueError, match="metric"):
        dales.collect(tmp_path / "runs", metric="speed")


def small_fashion(dir: Path, train: int, test: int) -> Path:
    """The first `train` training and `test` test examples of Fashion-MNIST, as IDX files."""
    dir.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("t10k", test)):
        for kind, magic, item in (("images", 2051, 784), ("labels", 2049, 1)):
            name = f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
            with gzip.open(FASHION / name) as f:
                data = f.read()
            head = 16 if kind == "images" else 8
            assert int.from_bytes(data[:4], "big") == magic
            out = data[:4] + n.to_bytes(4, "big") + data[8:head] + data[head : head + n * item]
            with gzip.open(dir / name, "wb") as f:
                f.write(out)
    return dir


def test_reproduce_equals_the_cli(tmp_path: Path) -> None:
    data = small_fashion(tmp_path / "data", 600, 200)
    events = []
    ours = dales.reproduce("dann2021", epochs=1, seeds=1, data=data, out=tmp_path / "py",
                           jobs=2, progress=lambda run, kind, *rest: events.append((run, kind)))
    cli("reproduce", "dann2021", "--epochs", "1", "--seeds", "1", "--data", str(data),
        "--out", str(tmp_path / "cli"))
    theirs = json.loads((tmp_path / "cli" / "results.json").read_text())
    models = ["mlp", "layernorm", "columnei", "dann", "dann_nocorr", "dann_dngd"]
    assert [r["model"] for r in ours.results] == models
    for a, b in zip(ours.results, theirs):
        a, b = dict(a), dict(b)
        assert a.pop("seconds_per_run") > 0 and b.pop("seconds_per_run") > 0
        assert a == b
    # Every run trained as the CLI trained it, two at a time here, one at a time there.
    for run in ours.runs:
        twin = tmp_path / "cli" / run.path.name
        ckpt = "checkpoint.safetensors"
        assert (run.path / ckpt).read_bytes() == (twin / ckpt).read_bytes(), run.path.name
    assert {run for run, kind in events if kind == "end"} == {f"{m} s1" for m in models}
    assert "dann_dngd" in ours.markdown and "dann_dngd" in ours._repr_markdown_()
    assert ours.plot()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in ours.files] == ["results.md", "results.json", "curves.png", "curves.svg"]
    # Called again, every run is finished: nothing trains, the same report.
    again = dales.reproduce("dann2021", epochs=1, seeds=1, data=data, out=tmp_path / "py",
                            progress=lambda *event: pytest.fail("trained again"))
    assert again.results == ours.results
    with pytest.raises(ValueError, match="dann2022"):
        dales.reproduce("dann2022", out=tmp_path / "none")
    with pytest.raises(ValueError, match="--seeds"):
        dales.reproduce("dann2021", seeds=0, out=tmp_path / "none")
    with pytest.raises(ValueError, match="jobs"):
        dales.reproduce("dann2021", jobs=0, out=tmp_path / "none")


INTERRUPTED_QUEUE = """
import signal, sys, dales
signal.signal(signal.SIGINT, signal.default_int_handler)
def progress(run, kind, epoch, epochs, batch, batches, loss, error):
    if kind == "step" and epoch == 2 and batch > 0:
        print("stepping", flush=True)
try:
    dales.sweep(sys.argv[1], out=sys.argv[2], jobs=2, progress=progress)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(0)
print("finished", flush=True)
"""

SWEEP = """\
name = "tiny"
base = "mlp"
seeds = 1

[set]
epochs = 3
batch_size = 32
model.hidden = [64]
data.limit_train = 12000

[grid]
optim.lr = [0.01, 0.05]
"""


def test_sweep_interrupted_resumes_and_equals_the_cli(tmp_path: Path) -> None:
    file = tmp_path / "tiny.toml"
    file.write_text(SWEEP)
    plan = dales.sweep_plan(file)
    assert [r["dir"] for r in plan["runs"]] == ["lr0.01_seed1", "lr0.05_seed1"]
    assert plan["runs"][1]["settings"] == {"optim.lr": 0.05} and plan["keys"] == ["optim.lr"]
    # Two runs at a time on worker threads; Ctrl-C reaches Python's main thread.
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED_QUEUE)
    out = tmp_path / "py"
    child = subprocess.Popen([sys.executable, str(script), str(file), str(out)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "stepping"
    child.send_signal(signal.SIGINT)
    rest = child.stdout.read()
    assert child.wait(timeout=120) == 0
    assert "KeyboardInterrupt" in rest and "finished" not in rest
    for run in plan["runs"]:
        summary = dales.Run(out / run["dir"]).summary
        assert summary is not None and not summary["finished"]
    ours = dales.sweep(file, out=out, jobs=2, progress=False)
    cli("sweep", "run", str(file), "--out", str(tmp_path / "cli"), "--jobs", "1")
    theirs = json.loads((tmp_path / "cli" / "collect.json").read_text())
    assert json.loads((out / "collect.json").read_text())["points"] == ours["points"]
    for a, b in zip(ours["points"], theirs["points"]):
        assert a["values"] == b["values"] and a["point"] == b["point"]
    for run in plan["runs"]:
        ckpt = "checkpoint.safetensors"
        assert (out / run["dir"] / ckpt).read_bytes() == (tmp_path / "cli" / run["dir"] / ckpt).read_bytes()
    assert (out / "collect-curves.png").exists()
    # The SLURM script: the CLI's, for the same dales; nothing left to train here.
    written = dales.slurm(file, out=tmp_path / "slurm-py", dales=dales_bin(), time="1:00:00")
    cli("sweep", "slurm", str(file), "--out", str(tmp_path / "slurm-cli"), "--time", "1:00:00")
    py_script = Path(written["script"]).read_text()
    cli_script = (tmp_path / "slurm-cli" / "slurm" / "sweep.sbatch").read_text()
    assert written["tasks"] == 2 and written["job"] is None
    assert py_script == cli_script.replace(str(tmp_path / "slurm-cli"), str(tmp_path / "slurm-py"))
    assert dales.slurm(file, out=out, dales=dales_bin())["script"] is None
    with pytest.raises(OSError, match="not an executable"):
        dales.slurm(file, out=tmp_path / "x", dales=tmp_path / "tiny.toml")
    with pytest.raises(ValueError, match="jobs"):
        dales.sweep(file, out=tmp_path / "x", jobs=0)
    with pytest.raises(OSError, match="missing.toml"):
        dales.sweep_plan(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(SWEEP.replace("optim.lr = [", "optim.lrr = ["))
    with pytest.raises(ValueError, match="optim.lrr"):
        dales.sweep_plan(bad)
