"""The search space of the ``tune`` stage: which parameters, their bounds, drawing them from an Optuna trial.

Pure functions of a TuneConfig; widths are hidden units per HeteroSAGE layer, the learning rate is AdamW's.
"""

from __future__ import annotations

from typing import Any

from dislomob.config import TuneConfig

TUNED_KEYS = ("width_f", "width_b", "width_e", "depth", "learning_rate")


def bounds(tune: TuneConfig) -> dict[str, tuple[float, float]]:
    """(low, high) of every tuned parameter, inclusive."""
    return {"width_f": tune.width_range, "width_b": tune.width_range, "width_e": tune.width_range,
            "depth": tune.depth_range, "learning_rate": tune.learning_rate_range}


def suggest(trial: Any, tune: TuneConfig) -> dict[str, int | float]:
    """Draw one point of the space from an Optuna ``trial``: widths log-uniform integers, depth uniform
    integer, learning rate log-uniform."""
    b = bounds(tune)
    out: dict[str, int | float] = {}
    for key in ("width_f", "width_b", "width_e"):
        out[key] = trial.suggest_int(key, int(b[key][0]), int(b[key][1]), log=True)
    out["depth"] = trial.suggest_int("depth", int(b["depth"][0]), int(b["depth"][1]))
    out["learning_rate"] = trial.suggest_float("learning_rate", float(b["learning_rate"][0]),
                                               float(b["learning_rate"][1]), log=True)
    return out


def outside(params: dict[str, Any], tune: TuneConfig) -> list[str]:
    """Descriptions of the parameters that are missing or outside the space (empty: all inside)."""
    bad = []
    for key, (low, high) in bounds(tune).items():
        v = params.get(key)
        if v is None or not (low <= v <= high):
            bad.append(f"{key}={v!r} (allowed {low} to {high})")
    return bad
