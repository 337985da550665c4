"""The report of a paper reproduction (``dales.reproduce``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from ._run import Curves, Run


class Reproduction:
    """A reproduction's runs and report, as ``dales reproduce`` writes them.

    ``markdown`` is the report's table (Jupyter shows it rendered), ``results`` what it was
    computed from (one dictionary per model, or per run for the robustness sweep and the
    spectral paper), ``files`` the report's files, ``runs`` every run of the reproduction
    (``Run.summary`` is ``None`` for one not trained yet), ``plot()`` its main figure.
    """

    def __init__(self, report: Dict[str, Any]) -> None:
        self.name: str = report["name"]
        self.dir = Path(report["dir"])
        self.markdown: str = report["markdown"]
        self.results: Any = report["results"]
        self.files: List[Path] = [Path(f) for f in report["files"]]
        self.runs: List[Run] = [Run(d) for d in report["runs"]]

    def __repr__(self) -> str:
        return f"Reproduction({self.name!r}, {str(self.dir)!r}, {len(self.runs)} runs)"

    def _repr_markdown_(self) -> str:
        return f"**dales reproduce {self.name}** ({self.dir})\n\n{self.markdown}"

    def plots(self) -> Dict[str, Curves]:
        """Every figure of the report (PNG), by file name without the extension."""
        return {f.stem: Curves(f.read_bytes()) for f in self.files if f.suffix == ".png"}

    def plot(self) -> Curves:
        """The report's first figure: the mean learning curves (or the robustness sweep)."""
        plots = self.plots()
        if not plots:
            raise ValueError(f"the report in {self.dir} has no figure")
        return next(iter(plots.values()))
