"""dales: biologically constrained neural networks, trained by a Rust core.

Dale's-principle networks (DANN, ColumnEI and their baselines; Cornford et al., ICLR 2021),
recurrent E/I networks (Li et al., NeurIPS 2023) and single-neuron adaptation (Geadah et al.,
PLOS CB 2024), with the same configurations, run directories and checkpoints as the ``dales``
command-line tool.

>>> import dales
>>> run = dales.train("dann", epochs=5)            # Fashion-MNIST, a live progress bar
>>> run.metrics["test_error"]                      # numpy arrays by metrics.csv column
>>> run.plot()                                     # learning curves, inline in Jupyter
>>> run.model().predict(images)                    # numpy in, numpy out
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _dales, _progress, analyze
from ._errors import DalesError, DalesOSError, DalesValueError
from ._reproduction import Reproduction
from ._run import Curves, Model, PathLike, Run

__version__: str = _dales.__version__
__all__ = [
    "DalesError",
    "DalesOSError",
    "DalesValueError",
    "Curves",
    "Model",
    "Reproduction",
    "Run",
    "analyze",
    "collect",
    "config",
    "reproduce",
    "robustness",
    "slurm",
    "spectrum",
    "sweep",
    "sweep_plan",
    "train",
]


def config(
    preset: Optional[str] = None,
    config: Union[PathLike, Mapping[str, Any], None] = None,
    **overrides: Any,
) -> Dict[str, Any]:
    """The full configuration a run would use, as a dictionary: a preset's (default
    ``dann``), a TOML file's or a dictionary's, with dotted-key ``overrides``
    (``**{"optim.lr": 0.05}``) set and every value validated. Edit it and pass it back as
    ``dales.train(config=...)``.

    Raises ``ValueError`` (``dales.DalesValueError``) naming a bad key or value.
    """
    args = _source(preset, config)
    return json.loads(_dales.resolve(*args, values=_values(overrides)))


def train(
    preset: Optional[str] = None,
    config: Union[PathLike, Mapping[str, Any], None] = None,
    *,
    data: Optional[PathLike] = None,
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    validation: Optional[int] = None,
    out: Optional[PathLike] = None,
    device: str = "cpu",
    overwrite: bool = False,
    max_memory: Optional[str] = None,
    progress: Any = True,
    **overrides: Any,
) -> Run:
    """Train a model into a run directory and return its ``Run``.

    The configuration is a paper preset (``"dann"``, ``"mlp"``, ``"layernorm"``,
    ``"columnei"``, ``"dann-nocorr"``, ``"conv-dann"``, ``"rowseq-colei"``, ``"rnn-gamma"``,
    …; the list is ``dales train --help``'s), a TOML file (``config="my.toml"``) or a
    dictionary (as ``dales.config()`` returns), with dotted-key overrides on top
    (``**{"optim.lr": 0.05, "model.hidden": [100, 100]}``). It is validated exactly as the
    command-line tool's; the run directory (``out``, default ``runs/<model>-seed<seed>``)
    gets the same files: config.toml, metrics.csv, summary.json, checkpoint.safetensors,
    curves.png/.svg.

    Args:
        preset: a paper preset (default ``"dann"`` when ``config`` is not given either).
        config: a TOML file or a configuration dictionary, instead of a preset.
        data: the dataset directory (default: Debian's Fashion-MNIST,
            /usr/share/datasets/fashion-mnist).
        epochs, seed: replace the configuration's.
        validation: hold this many training examples out and evaluate on them instead of the
            test set.
        out: the run directory; an existing run there is refused unless ``overwrite``.
        device: ``"cpu"``, or ``"gpu"`` (a dales built with the ``gpu`` feature).
        max_memory: refuse a model whose memory estimate exceeds this (``"8G"``).
        progress: ``True`` for a live bar (tqdm where installed), ``False`` for none, or a
            callable taking ``(kind, epoch, epochs, batch, batches, loss, error)``.

    Training runs without the GIL. Ctrl-C (or Jupyter's stop button) saves the run's state
    and raises ``KeyboardInterrupt``; ``dales.Run(out).resume()`` continues it to the same
    result as an uninterrupted run.

    Raises:
        ValueError: ``dales.DalesValueError``, a bad preset, key or value (named).
        OSError: ``dales.DalesOSError``, a missing data directory or file, a run directory
            in use or already holding a run.
        dales.DalesError: the training diverged (non-finite loss), the model is too large.
    """
    preset_, path, json_ = _source(preset, config)
    name = preset or (os.path.basename(os.fspath(config)) if path else "run")
    callback = _progress.make(name, progress)
    out_dir = _dales.train(
        preset_,
        path,
        json_,
        _values(overrides),
        _path(data),
        epochs,
        seed,
        validation,
        _path(out),
        device,
        overwrite,
        max_memory,
        callback,
    )
    return Run(out_dir)


def reproduce(
    name: str,
    *,
    epochs: Optional[int] = None,
    seeds: Optional[int] = None,
    full: bool = False,
    out: Optional[PathLike] = None,
    data: Optional[PathLike] = None,
    jobs: int = 1,
    report_only: bool = False,
    progress: Any = True,
) -> Reproduction:
    """Reproduce a paper's comparison, as ``dales reproduce NAME`` does: train its runs
    (finished ones are kept, interrupted ones resumed) and write its report.

    ``name``: ``"dann2021"`` (the six feed-forward models of Cornford et al., ICLR 2021, on
    Fashion-MNIST), ``"dann2021-conv"`` (the convolutional comparison), ``"adaptation"``
    (Geadah et al.: the RNNs on permuted pixel sequences, then their accuracy under an
    external drive) or ``"dale2023"`` (Li et al., NeurIPS 2023: spectra and E/I RNNs).

    Args:
        epochs, seeds: per run and per model (default: the reproduction's).
        full: the paper's full size (``adaptation``, ``dale2023``; ``dann2021-conv``: VGG16
            on CIFAR-10 from ``data``).
        out: the output directory (default ``runs/<name>``).
        data: the dataset directory (default: Debian's Fashion-MNIST).
        jobs: runs trained at the same time.
        report_only: train nothing; report the runs finished so far.
        progress: ``True`` for a bar per training run, ``False`` for none, or a callable
            taking ``(run, kind, epoch, epochs, batch, batches, loss, error)``.

    Ctrl-C (or Jupyter's stop button) saves the training runs and raises
    ``KeyboardInterrupt``; calling again resumes them. Runs that fail are reported together
    in a ``dales.DalesError`` after the others have trained.
    """
    report = _dales.reproduce(
        name, _path(out), epochs, seeds, full, _path(data), jobs, report_only,
        _progress.make_queue(progress),
    )
    return Reproduction(json.loads(report))


def sweep_plan(file: PathLike, *, data: Optional[PathLike] = None) -> Dict[str, Any]:
    """The runs of a sweep file (``dales sweep plan``): ``name``, ``metric``, ``keys`` and
    ``runs``, each with its ``id``, run directory ``dir``, setting name ``point``, ``seed`` and
    the swept ``settings``. Every run's configuration is validated; errors name the file,
    the run and the key."""
    return json.loads(_dales.sweep_plan(os.fspath(file), _path(data)))


def sweep(
    file: PathLike,
    *,
    out: Optional[PathLike] = None,
    data: Optional[PathLike] = None,
    jobs: int = 1,
    progress: Any = True,
) -> Dict[str, Any]:
    """Train the runs of a sweep file here (``dales sweep run``), ``jobs`` at a time, into
    ``out`` (default ``runs/<sweep name>``), then collect them: the collection's files and
    plots are written there and returned as ``dales.collect`` returns them.

    Finished runs are kept and interrupted ones resumed; a diverged run is a result (its
    setting's), not retried. Ctrl-C saves the training runs and raises
    ``KeyboardInterrupt``. Runs that fail are recorded in their ``error.txt`` and reported
    together in a ``dales.DalesError`` after the others are collected.
    """
    found = _dales.sweep_run(
        os.fspath(file), _path(out), _path(data), jobs, _progress.make_queue(progress)
    )
    return json.loads(found)


def slurm(
    file: PathLike,
    *,
    out: Optional[PathLike] = None,
    data: Optional[PathLike] = None,
    partition: Optional[str] = None,
    time: Optional[str] = None,
    cpus_per_task: int = 1,
    mem: Optional[str] = None,
    gpus_per_task: Optional[int] = None,
    max_concurrent: Optional[int] = None,
    term_before: int = 120,
    sbatch_args: Sequence[str] = (),
    submit: bool = False,
    dales: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Write the SLURM job array of a sweep file's unfinished runs (``dales sweep slurm``):
    ``out/slurm/sweep.sbatch``, whose task ``i`` runs ``dales sweep task OUT i``; with
    ``submit``, submit it with ``sbatch``. ``out`` must be on a file system the cluster's
    nodes share. The tasks run the command-line tool: ``dales`` is its path (default: the
    ``dales`` on ``PATH``; install it with ``cargo install --path crates/dales-cli``).

    Returns ``dir``, ``script`` (``None`` when every run is done), ``tasks`` and ``job`` (the
    job id, when submitted). Collect the results with ``dales.collect(dir)``.
    """
    exe = _path(dales) if dales is not None else shutil.which("dales")
    if exe is None:
        raise DalesOSError(
            "dales: the command-line tool is not on PATH; the array tasks run it: install it "
            "(cargo install --path crates/dales-cli) or pass dales=PATH"
        )
    exe = os.path.abspath(exe)
    if not os.access(exe, os.X_OK):
        raise DalesOSError(f"{exe}: not an executable (dales=: the command-line tool)")
    return json.loads(
        _dales.sweep_slurm(
            os.fspath(file), exe, _path(out), _path(data), partition, time, cpus_per_task,
            mem, gpus_per_task, max_concurrent, term_before, list(sbatch_args), submit,
        )
    )


def collect(directory: PathLike, metric: Optional[str] = None) -> Dict[str, Any]:
    """The results of a sweep directory (``dales sweep run``/``slurm``) or of any directory of
    runs, as ``dales sweep collect`` finds them (without writing its files): ``points``, one
    per setting, with its ``model``, swept ``settings``, finished ``seeds``, the ranking
    ``metric``'s per-run ``values``, ``mean`` and ``sd``, and its mean error ``curve``;
    ``unfinished`` runs with their state. ``metric``: ``final_test_error`` (default without a
    sweep file), ``best_test_error``, ``last5_test_error`` or ``final_test_loss``."""
    return json.loads(_dales.collect(os.fspath(directory), metric))


def robustness(
    runs: Union[PathLike, Sequence[PathLike]],
    xi: Sequence[float] = analyze.PAPER_XI,
    *,
    drive: str = "step",
    cov: float = 2.0,
    limit: Optional[int] = None,
    data: Optional[PathLike] = None,
) -> List[Dict[str, Any]]:
    """Accuracy (%) of trained sequence runs under an external drive of each amplitude ``xi``
    (spec C4; ``dales robustness``): ``drive`` is ``"step"`` (the paper's), ``"noise"`` or
    ``"mvnormal"`` (variance ``cov``); ``limit`` evaluates on the first test images only.
    One dictionary per run: ``run``, ``kind``, ``seed``, ``xi``, ``accuracy`` (an array) and
    ``sin_accuracy`` (under the paper's sin input transform)."""
    if isinstance(runs, (str, os.PathLike)):
        runs = [runs]
    return _dales.robustness([os.fspath(r) for r in runs], list(xi), drive, cov, limit, _path(data))


def spectrum(
    models: Sequence[str] = ("rnn", "dann", "colei"),
    *,
    hidden: int = 100,
    ratio: float = 9.0,
    radius: Optional[float] = None,
    seeds: int = 20,
) -> List[Dict[str, Any]]:
    """Spectra of recurrent initialisations sampled without training (spec B5, ``dales
    spectrum``): for each model and seed ``0..seeds``, a dictionary with ``label``, ``seed``,
    ``matrix``, ``eigenvalues_re``/``_im``, ``singular_values``, ``nse``, ``spectral_radius``
    and ``circular_radius``."""
    return _dales.spectrum(list(models), hidden, ratio, radius, seeds)


def _source(preset: Optional[str], config: Any) -> tuple:
    """(preset, TOML path, JSON text) for the extension."""
    if preset is not None and config is not None:
        raise DalesValueError("give a preset or a config, not both")
    if preset is not None and not isinstance(preset, str):
        raise DalesValueError(f"preset: expected a preset name, got {preset!r}")
    if config is None:
        return preset, None, None
    if isinstance(config, Mapping):
        return None, None, json.dumps(config)
    if isinstance(config, (str, os.PathLike)):
        return None, os.fspath(config), None
    raise DalesValueError(
        f"config: expected a TOML file's path or a dictionary, got {type(config).__name__}"
    )


def _values(overrides: Mapping[str, Any]) -> list:
    """Dotted-key overrides as (key, JSON) pairs."""
    values = []
    for key, value in overrides.items():
        try:
            values.append((key, json.dumps(value)))
        except TypeError as e:
            raise DalesValueError(f"`{key}` = {value!r}: expected a number, string, bool or list") from e
    return values


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)
