"""Which laws the stage scores: the PI-GNN ensemble (``evaluate.model``) and the phenomenological law fitted to
the same training trajectories.

- ``champion``: the registry's champion as the register stage copied it (``<register_dir>/ensemble.pt``, its law
  config ``law_config.json`` and ``model.json`` with the ``models:/<name>@champion`` URI and version): the files
  are the register stage's declared outputs, so DVC reruns ``evaluate`` when the champion changes.
- ``train``: the train stage's ensemble ``<train.model_dir>/ensemble.pt`` (trained with the current params).

The ensemble file lists the trajectories it was trained and validated on (``extra``: ``split`` of the train
stage, ``train``/``val`` of an active-learning iteration); the fitted law (dislomob.model.phenomenological.fit_baseline) is
fitted on the same training trajectories, and the test sets leave out every trajectory the ensemble saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dislomob.config import Config
from dislomob.errors import InputFileError

if TYPE_CHECKING:
    import torch

MODEL_CHOICES = ("champion", "train")


@dataclass(frozen=True)
class EvaluatedModel:
    """The ensemble, its config (material and features it was trained with, the rest from the params), its file,
    the trajectories it trained on and all it saw (train + validation), and where it came from."""

    kind: str
    model: torch.nn.Module
    cfg: Config
    path: Path
    train_ids: list[str]
    seen_ids: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)


def trained_on(extra: dict[str, Any], path: Path) -> tuple[list[str], list[str]]:
    """(training, validation) trajectory ids recorded in an ensemble file's ``extra``."""
    parts = extra.get("split") if isinstance(extra.get("split"), dict) else extra
    train, val = parts.get("train"), parts.get("val")
    if not isinstance(train, list) or not train:
        raise InputFileError(f"{path}: the ensemble file does not list its training trajectories (extra 'split' or "
                             "'train'); retrain it with this version")
    return sorted(map(str, train)), sorted(map(str, val or []))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(f"{path}: unreadable ({err})") from None


def load_evaluated_model(cfg: Config, kind: str, register_dir: str | Path = "models/register",
                         train_dir: str | Path | None = None) -> EvaluatedModel:
    """The ensemble ``kind`` (champion or train) names, in eval mode, with its training trajectories."""
    from dislomob.model.ensemble import load_ensemble

    if kind not in MODEL_CHOICES:
        raise ValueError(f"evaluate.model={kind!r}: allowed {list(MODEL_CHOICES)}")
    if kind == "champion":
        from dislomob.registry.law_config import read_law_config

        home = Path(register_dir)
        path, info_path = home / "ensemble.pt", home / "model.json"
        if not path.is_file() or not info_path.is_file():
            raise InputFileError(f"no registered champion in {home} (ensemble.pt, model.json): run `dislomob register` "
                                 "or set evaluate.model: train")
        law = read_law_config(home / "law_config.json")
        run_cfg = cfg.model_copy(update={"material": law.material, "features": law.features})
        info = _read_json(info_path)
        provenance = {k: info.get(k) for k in ("model_uri", "model_version_uri", "version", "source", "run_id")}
    else:
        home = Path(train_dir or cfg.train.model_dir)
        path, run_cfg = home / "ensemble.pt", cfg
        if not path.is_file():
            raise InputFileError(f"train ensemble {path} not found: run `dislomob train`")
        run = home / "run.json"
        provenance = {"mlflow_run_id": _read_json(run).get("mlflow_run_id")} if run.is_file() else {}
    model, extra = load_ensemble(path)
    train, val = trained_on(extra, path)
    provenance = {"path": str(path), **provenance}
    return EvaluatedModel(kind, model.eval(), run_cfg, path, train, sorted(set(train) | set(val)), provenance)


def fit_law(train_graphs: list, steps: int):
    """(fitted law, its BaselineFit) on ``train_graphs`` in one batch, as the train stage fits it."""
    from torch_geometric.loader import DataLoader

    from dislomob.model.phenomenological import fit_baseline

    if not train_graphs:
        raise ValueError("the fitted law needs training graphs: none given")
    batch = next(iter(DataLoader(train_graphs, batch_size=len(train_graphs))))
    law, fit = fit_baseline(batch, steps=steps)
    return law.eval(), fit
