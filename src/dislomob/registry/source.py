"""Which ensemble the register stage registers (``registry.source``).

- ``active``: the final ensemble of the active-learning strategy: ``<al_dir>/active/iter_NNN/ensemble.pt`` of
  the last iteration its ``record.json`` lists (the record is rewritten after each completed iteration, so
  every listed iteration has its ensemble); its metrics are that iteration's record entry.
- ``train``: the train stage's ``<train.model_dir>/ensemble.pt``; its metrics are the train stage's metrics
  file (metrics/train.json) when it exists.
- ``auto``: ``active`` when the active strategy has completed at least one iteration, else ``train``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dislomob.errors import InputFileError

SOURCES = ("auto", "active", "train")


@dataclass(frozen=True)
class EnsembleSource:
    """The ensemble to register: ``kind`` (active or train), its file, its training metrics and details."""

    kind: str
    path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def _numbers(d: dict) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(f"{path}: unreadable {what} ({err})") from None


def active_source(al_dir: str | Path) -> EnsembleSource | None:
    """The active strategy's last completed iteration ensemble, or None when it has none (no record, no iteration)."""
    home = Path(al_dir) / "active"
    record_path = home / "record.json"
    if not record_path.is_file():
        return None
    record = _read_json(record_path, "active-learning record")
    its = (record.get("iterations") or []) if isinstance(record, dict) else []
    if not its:
        return None
    last = its[-1]
    path = home / f"iter_{int(last['iteration']):03d}" / "ensemble.pt"
    if not path.is_file():
        raise InputFileError(f"{record_path} lists iteration {last['iteration']} but its ensemble {path} is missing")
    return EnsembleSource("active", path, _numbers(last.get("metrics", {})),
                          {"iteration": int(last["iteration"]), "stopped": record.get("stopped"),
                           "parent_run_id": record.get("parent_run_id")})


def train_source(model_dir: str | Path, metrics_path: str | Path | None = "metrics/train.json") -> EnsembleSource:
    """The train stage's ensemble; InputFileError when its file is missing."""
    path = Path(model_dir) / "ensemble.pt"
    if not path.is_file():
        raise InputFileError(f"train ensemble {path} not found: run `dislomob train` (or `dvc repro train`)")
    metrics = {}
    if metrics_path is not None and Path(metrics_path).is_file():
        metrics = _numbers(_read_json(Path(metrics_path), "train metrics"))
    run = Path(model_dir) / "run.json"
    detail = {"mlflow_run_id": _read_json(run, "train run record").get("mlflow_run_id")} if run.is_file() else {}
    return EnsembleSource("train", path, metrics, detail)


def resolve_source(source: str, model_dir: str | Path, al_dir: str | Path,
                   train_metrics: str | Path | None = "metrics/train.json") -> EnsembleSource:
    """The ensemble that ``source`` (auto, active or train) names (module docstring)."""
    if source not in SOURCES:
        raise ValueError(f"registry.source={source!r} not allowed: one of {list(SOURCES)}")
    if source in ("auto", "active"):
        found = active_source(al_dir)
        if found is not None:
            return found
        if source == "active":
            raise InputFileError(f"registry.source=active but {Path(al_dir) / 'active'} has no completed iteration "
                                 "(run `dislomob al --strategy active`, or use registry.source auto or train)")
    return train_source(model_dir, train_metrics)
