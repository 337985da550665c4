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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _dales, _progress, analyze
from ._errors import DalesError, DalesOSError, DalesValueError
from ._run import Curves, Model, PathLike, Run

__version__: str = _dales.__version__
__all__ = [
    "DalesError",
    "DalesOSError",
    "DalesValueError",
    "Curves",
    "Model",
    "Run",
    "analyze",
    "collect",
    "config",
    "robustness",
    "spectrum",
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
