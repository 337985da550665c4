"""Progress of a training run: a tqdm bar where tqdm is installed (a live widget in Jupyter),
else one line on stderr rewritten in place (in a terminal or a notebook; elsewhere a line per
epoch)."""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Dict, Optional

# (kind, epoch, epochs, batch, batches, loss, error): kind is "start" (batch = the first batch
# of the epoch), "step" (loss and running training error) or "end" (loss and error on the
# evaluation set).
Callback = Callable[[str, int, int, int, int, float, float], None]


def make(name: str, progress: Any) -> Optional[Callback]:
    """The callback for `progress`: True (a bar), False/None (nothing) or a callable taking
    the event tuple."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return _Bar(name)
    if callable(progress):
        return progress
    raise TypeError(f"progress: expected True, False or a callable, got {progress!r}")


# (run, kind, epoch, epochs, batch, batches, loss, error): the events of the runs of a queue
# (a reproduction, a sweep), `run` the run's name.
QueueCallback = Callable[[str, str, int, int, int, int, float, float], None]


def make_queue(progress: Any) -> Optional[QueueCallback]:
    """The callback of a queue of runs for `progress`: True (a bar per training run), False
    or None (nothing) or a callable taking the event tuple with the run's name first."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return _Bars()
    if callable(progress):
        return progress
    raise TypeError(f"progress: expected True, False or a callable, got {progress!r}")


class _Bars:
    """A bar per run of a queue, while it trains."""

    def __init__(self) -> None:
        self.bars: Dict[str, _Bar] = {}

    def __call__(self, run: str, kind: str, *event: Any) -> None:
        bar = self.bars.get(run)
        if bar is None:
            bar = self.bars[run] = _Bar(run)
        bar(kind, *event)
        if kind == "end" and event[0] == event[1]:
            del self.bars[run]


class _Bar:
    """One bar per epoch, labelled with the run's name; the last evaluation in its postfix."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: Any = None
        self.last = ""
        try:
            from tqdm.auto import tqdm

            self.tqdm: Any = tqdm
        except ImportError:
            self.tqdm = None

    def __call__(
        self, kind: str, epoch: int, epochs: int, batch: int, batches: int, loss: float, error: float
    ) -> None:
        if kind == "start":
            self._close()
            desc = f"{self.name} epoch {epoch}/{epochs}"
            if self.tqdm is not None:
                self.bar = self.tqdm(total=batches, initial=batch, desc=desc, unit="step", leave=False)
            elif _live():
                self.bar = _Line(desc, batches)
                self.bar.update_to(batch, "")
            # Else (a log file, a pipe) only the epochs' lines.
        elif kind == "step" and self.bar is not None:
            text = f"loss {loss:.4f}, train error {error:.2f}"
            if self.tqdm is not None:
                self.bar.n = batch
                self.bar.set_postfix_str(text, refresh=False)
                self.bar.refresh()
            else:
                self.bar.update_to(batch, text)
        elif kind == "end":
            self.last = f"epoch {epoch}/{epochs}: eval loss {loss:.4f}, error {_number(error)}"
            self._close()
            if epoch == epochs or self.tqdm is None:
                print(f"{self.name} {self.last}", file=sys.stderr, flush=True)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _Line:
    """A one-line bar on stderr (no tqdm)."""

    def __init__(self, desc: str, total: int) -> None:
        self.desc, self.total = desc, max(total, 1)

    def update_to(self, n: int, text: str) -> None:
        width = 24
        done = int(width * n / self.total)
        bar = "#" * done + "-" * (width - done)
        sys.stderr.write(f"\r{self.desc} [{bar}] {n}/{self.total} {text}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _live() -> bool:
    """Whether stderr shows a line rewritten in place: a terminal or a notebook."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def _number(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.2f}"
