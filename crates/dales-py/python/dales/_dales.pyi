"""Type stubs of the extension module (crates/dales-py/src); the public API is in dales."""

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

__version__: str

Progress = Callable[[str, int, int, int, int, float, float], None]

def resolve(
    preset: Optional[str] = None,
    config_path: Optional[str] = None,
    config_json: Optional[str] = None,
    values: List[Tuple[str, str]] = ...,
) -> str: ...
def train(
    preset: Optional[str] = None,
    config_path: Optional[str] = None,
    config_json: Optional[str] = None,
    values: List[Tuple[str, str]] = ...,
    data: Optional[str] = None,
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    validation: Optional[int] = None,
    out: Optional[str] = None,
    device: Optional[str] = None,
    overwrite: bool = False,
    max_memory: Optional[str] = None,
    progress: Optional[Progress] = None,
) -> str: ...
def resume(
    dir: str,
    epochs: Optional[int] = None,
    data: Optional[str] = None,
    progress: Optional[Progress] = None,
) -> str: ...
def run_config(dir: str) -> str: ...
def run_summary(dir: str) -> Optional[str]: ...
def run_metrics(dir: str) -> List[Tuple[str, np.ndarray]]: ...
def checkpoint(path: str) -> Tuple[dict, dict]: ...
def plot_png(dir: str) -> bytes: ...

class Model:
    def __init__(self, dir: str) -> None: ...
    @property
    def input_shape(self) -> Tuple[str, int]: ...
    @property
    def every_step(self) -> bool: ...
    @property
    def dir(self) -> str: ...
    def logits(self, x: np.ndarray) -> np.ndarray: ...

def robustness(
    runs: List[str],
    xi: List[float],
    drive: str = "step",
    cov: float = 2.0,
    limit: Optional[int] = None,
    data: Optional[str] = None,
) -> List[Dict[str, Any]]: ...
def spectrum(
    models: List[str],
    hidden: int = 100,
    ratio: float = 9.0,
    radius: Optional[float] = None,
    seeds: int = 20,
) -> List[Dict[str, Any]]: ...
def analyze_spectrum(run: str) -> List[Dict[str, Any]]: ...
def analyze_traces(
    run: str, xi: List[float], sequences: int = 100, data: Optional[str] = None
) -> Dict[str, Any]: ...
def analyze_lyapunov(
    run: str,
    xi: List[float],
    sequences: int = 100,
    data: Optional[str] = None,
    iterations: int = 1000,
) -> Dict[str, Any]: ...
def analyze_jacobian(
    run: str, xi: List[float], sequences: int = 100, data: Optional[str] = None
) -> Dict[str, Any]: ...
def analyze_response(
    run: str, xi: List[float], isolated: bool = False, trials: int = 5
) -> Dict[str, Any]: ...
def collect(dir: str, metric: Optional[str] = None) -> str: ...

QueueProgress = Callable[[str, str, int, int, int, int, float, float], None]

def reproduce(
    name: str,
    out: Optional[str] = None,
    epochs: Optional[int] = None,
    seeds: Optional[int] = None,
    full: bool = False,
    data: Optional[str] = None,
    jobs: int = 1,
    report_only: bool = False,
    progress: Optional[QueueProgress] = None,
) -> str: ...
def sweep_plan(file: str, data: Optional[str] = None) -> str: ...
def sweep_run(
    file: str,
    out: Optional[str] = None,
    data: Optional[str] = None,
    jobs: int = 1,
    progress: Optional[QueueProgress] = None,
) -> str: ...
def sweep_slurm(
    file: str,
    dales: str,
    out: Optional[str] = None,
    data: Optional[str] = None,
    partition: Optional[str] = None,
    time: Optional[str] = None,
    cpus_per_task: int = 1,
    mem: Optional[str] = None,
    gpus_per_task: Optional[int] = None,
    max_concurrent: Optional[int] = None,
    term_before: int = 120,
    sbatch_args: List[str] = ...,
    submit: bool = False,
) -> str: ...
