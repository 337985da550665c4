"""Analyses of trained runs (``dales analyze``), returned as numpy arrays in dictionaries.

Sequence runs of the adaptation paper (spec C5): ``traces``, ``lyapunov``, ``jacobian``,
``response``; recurrent E/I runs of the spectral paper (spec B5): ``spectrum``. The drive
amplitudes ``xi`` default to the paper's 0, 1, 2.5, 5, 10, 20.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from . import _dales
from ._run import PathLike

PAPER_XI = (0.0, 1.0, 2.5, 5.0, 10.0, 20.0)

__all__ = ["PAPER_XI", "jacobian", "lyapunov", "response", "spectrum", "traces"]


def _data(data: Optional[PathLike]) -> Optional[str]:
    return None if data is None else os.fspath(data)


def traces(
    run: PathLike,
    xi: Sequence[float] = PAPER_XI,
    *,
    sequences: int = 100,
    data: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Population means per step of the gain ``n_mean``, saturation ``s_mean`` and activity
    ``h_mean`` (arrays ``(len(xi), steps)``; gain and saturation NaN for units without them)
    of a sequence run on ``sequences`` test images under the step drive of each amplitude."""
    return _dales.analyze_traces(os.fspath(run), list(xi), sequences, _data(data))


def lyapunov(
    run: PathLike,
    xi: Sequence[float] = PAPER_XI,
    *,
    sequences: int = 100,
    data: Optional[PathLike] = None,
    iterations: int = 1000,
) -> Dict[str, Any]:
    """The Lyapunov spectrum (bits per step, largest first; ``exponents``: ``(len(xi), H)``)
    of a sequence run along its driven trajectories."""
    return _dales.analyze_lyapunov(os.fspath(run), list(xi), sequences, _data(data), iterations)


def jacobian(
    run: PathLike,
    xi: Sequence[float] = PAPER_XI,
    *,
    sequences: int = 100,
    data: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Mean ∞-operator norm ``inf_norm`` and spectral norm ``spectral_norm`` of the recurrent
    Jacobian of a sequence run under each drive amplitude."""
    return _dales.analyze_jacobian(os.fspath(run), list(xi), sequences, _data(data))


def response(
    run: PathLike,
    xi: Sequence[float] = PAPER_XI,
    *,
    isolated: bool = False,
    trials: int = 5,
) -> Dict[str, Any]:
    """Step responses of a sequence run (spec C5, the paper's Fig. 3 protocol): the mean
    response ``population`` (``(len(xi), steps)``), each neuron's ``adaptation_index``, the
    population's fractional-order fit (``alphas``, ``mse``, ``best_alpha``) and each
    neuron's best order ``neuron_alpha``."""
    return _dales.analyze_response(os.fspath(run), list(xi), isolated, trials)


def spectrum(run: PathLike) -> List[Dict[str, Any]]:
    """Eigenvalues (``eigenvalues_re``, ``eigenvalues_im``), singular values, NSE, spectral and
    circular-law radius of each recurrent matrix of a recurrent E/I run, at its
    initialisation (``label`` "init") and trained ("trained")."""
    return _dales.analyze_spectrum(os.fspath(run))
