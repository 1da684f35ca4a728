"""Single-step errors binned by character angle (deg), temperature (K) or resolved shear stress (GPa).

Bins are [edge_i, edge_i+1); the outer bins are open (a value below the first edge falls in the first bin,
one at or above the last edge in the last), so every graph is in exactly one bin. Per bin: the number of
graphs and of trajectories, and for each law the median percentage error and the median absolute error
(Angstrom) with their interquartile range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dislomob.evaluate.single_step import LAWS, StepErrors

BIN_KEYS = {"angle": "angle_deg", "temperature": "temperature_k", "stress": "stress_gpa"}


def check_edges(edges: list[float], what: str) -> np.ndarray:
    """``edges`` as an array; ValueError naming ``what`` unless at least two strictly increasing values."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or not np.all(np.diff(e) > 0) or not np.all(np.isfinite(e)):
        raise ValueError(f"{what}={list(edges)}: allowed at least two finite, strictly increasing bin edges")
    return e


def covering_edges(edges: list[float], values: np.ndarray) -> list[float]:
    """``edges`` extended upward by their last spacing until the largest of ``values`` lies below the last edge
    (loops are loaded beyond the dipoles' stress range: their graphs get bins of their own, not the open last one)."""
    e = [float(x) for x in check_edges(edges, "bin edges")]
    top = float(np.max(values)) if len(values) else e[-1]
    step = e[-1] - e[-2]
    while top >= e[-1] and len(e) < 1000:
        e.append(round(e[-1] + step, 9))
    return e


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value (0 .. len(edges) - 2; outer bins open)."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def _quartiles(v: np.ndarray) -> tuple[float | None, float | None, float | None]:
    if len(v) == 0:
        return None, None, None
    q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
    return float(med), float(q1), float(q3)


def bin_errors(errors: StepErrors, by: str, edges: list[float]) -> list[dict[str, Any]]:
    """One row per bin of ``errors`` by ``by`` (angle, temperature or stress): edges, center, counts, medians."""
    if by not in BIN_KEYS:
        raise ValueError(f"bin by {by!r}: allowed {list(BIN_KEYS)}")
    e = check_edges(edges, f"{by} bin edges")
    idx = bin_index(getattr(errors, BIN_KEYS[by]), e)
    rows = []
    for k in range(len(e) - 1):
        sel = idx == k
        row: dict[str, Any] = {"low": float(e[k]), "high": float(e[k + 1]), "center": float(0.5 * (e[k] + e[k + 1])),
                               "n_graphs": int(sel.sum()), "n_trajectories": len(set(errors.traj[sel].tolist()))}
        for law in LAWS:
            for unit, values in (("pct", errors.percent[law]), ("angstrom", errors.absolute_angstrom[law])):
                med, q1, q3 = _quartiles(values[sel])
                row[f"{law}_error_{unit}_median"] = med
                row[f"{law}_error_{unit}_q1"] = q1
                row[f"{law}_error_{unit}_q3"] = q3
        rows.append(row)
    return rows
