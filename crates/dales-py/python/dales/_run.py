"""A run directory: its configuration, summary, metrics, checkpoint, curves and model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from . import _dales, _progress

PathLike = Union[str, "os.PathLike[str]"]


class Run:
    """A run directory written by ``dales.train`` or ``dales train`` (config.toml,
    metrics.csv, summary.json, checkpoint.safetensors, curves.png).

    >>> run = dales.Run("runs/dann-seed1")
    >>> run.summary["final_test_error"]
    >>> run.metrics["test_error"]          # numpy array, one value per epoch
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        # Opening validates the directory and its config.toml (an OSError or ValueError).
        self._config: Dict[str, Any] = json.loads(_dales.run_config(str(self.path)))

    def __repr__(self) -> str:
        s = self.summary
        if s is None:
            state = "not saved yet"
        else:
            err = s.get("final_test_error")
            state = f"{s['epochs_done']}/{s['epochs']} epochs" + (
                "" if err is None else f", {s['eval_set']} error {err:.4g}"
            )
        return f"Run({str(self.path)!r}: {self.name}, {state})"

    @property
    def name(self) -> str:
        """The model's name (``dann``, ``mlp``, ``rowseq-colei`` …) and seed."""
        s = self.summary
        kind = s["kind"] if s else self._config.get("model", {}).get("kind", "?")
        return f"{kind} seed {self._config.get('seed')}"

    @property
    def config(self) -> Dict[str, Any]:
        """The run's resolved configuration (its config.toml) as a dictionary."""
        return json.loads(json.dumps(self._config))

    @property
    def summary(self) -> Optional[Dict[str, Any]]:
        """summary.json as a dictionary (None before the run's first save): epochs done,
        final and best error, wall time, steps."""
        text = _dales.run_summary(str(self.path))
        return None if text is None else json.loads(text)

    @property
    def metrics(self) -> Dict[str, np.ndarray]:
        """metrics.csv as numpy arrays by column: epoch, step, train_loss, train_error,
        test_loss, test_error (the evaluation set's), lr, seconds, and the model's probes.
        Row 0 is the initial model (epoch 0, no training metrics) where the run evaluated it."""
        return dict(_dales.run_metrics(str(self.path)))

    def metrics_frame(self) -> Any:
        """metrics.csv as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Run.metrics_frame needs pandas: pip install pandas") from e
        return pd.DataFrame(self.metrics)

    def resume(
        self,
        epochs: Optional[int] = None,
        *,
        data: Optional[PathLike] = None,
        progress: Any = True,
    ) -> "Run":
        """Continue the run (interrupted, or to more ``epochs``) in place; returns self.
        Ctrl-C saves the state and raises KeyboardInterrupt, as in ``dales.train``."""
        callback = _progress.make(self.name, progress)
        _dales.resume(str(self.path), epochs, None if data is None else os.fspath(data), callback)
        self._config = json.loads(_dales.run_config(str(self.path)))
        return self

    def checkpoint(self) -> Dict[str, np.ndarray]:
        """The weights of checkpoint.safetensors as float32 arrays, by the names of the
        checkpoint contract (``hidden.0.wex``, ``output.wei`` …; docs/checkpoints.md)."""
        arrays, _ = _dales.checkpoint(str(self.path / "checkpoint.safetensors"))
        return dict(arrays)

    def checkpoint_metadata(self) -> Dict[str, str]:
        """The checkpoint's metadata (format, kind, sizes)."""
        _, meta = _dales.checkpoint(str(self.path / "checkpoint.safetensors"))
        return dict(meta)

    def model(self) -> "Model":
        """The trained model, to apply to numpy inputs."""
        return Model(self.path)

    def plot(self) -> "Curves":
        """The learning curves (loss and error per epoch) as a PNG image: Jupyter shows it
        inline; ``bytes(run.plot())`` are the PNG file's bytes."""
        return Curves(_dales.plot_png(str(self.path)))


class Curves(bytes):
    """PNG bytes that Jupyter displays as an image."""

    def _repr_png_(self) -> bytes:
        return bytes(self)


class Model:
    """A run's trained model, applied to batches of numpy inputs (batch first, float32).

    Feed-forward models take examples of ``n_in`` values (``(B, 784)`` or ``(B, 28, 28)``),
    convnets ``(B, C, H, W)`` (or ``(B, H, W)``, ``(B, C·H·W)``), recurrent and sequence
    models sequences ``(B, T, n_in)``. Inputs are used as given: scale images to [0, 1] as
    the training data was.
    """

    def __init__(self, path: PathLike) -> None:
        self._model = _dales.Model(os.fspath(path))

    def __repr__(self) -> str:
        kind, n = self._model.input_shape
        shape = f"(batch, {n})" if kind == "flat" else f"(batch, steps, {n})"
        return f"Model({self._model.dir!r}, inputs {shape})"

    @property
    def input_shape(self) -> tuple:
        """``("flat", n)``: examples of n values; ``("sequence", d)``: d values per step."""
        return self._model.input_shape

    def forward(self, x: Any) -> np.ndarray:
        """Logits ``(B, classes)`` (``(B·T, classes)`` for a model that reads out every step)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self._model.logits(x)

    __call__ = forward

    def predict(self, x: Any) -> np.ndarray:
        """The predicted class of each example (row of the logits)."""
        return np.argmax(self.forward(x), axis=-1)
