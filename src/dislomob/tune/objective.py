"""One Optuna trial: train a small ensemble with the trial's widths, depth and learning rate; score it by
the validation loss (Angstrom) of its selected members. Test trajectories are never given to a trial.
"""

from __future__ import annotations

import tempfile
from typing import Any

import lightning.pytorch as pl
import torch
from torch_geometric.data import HeteroData

from dislomob.config import TrainConfig, TuneConfig
from dislomob.train.data import GraphDataModule


def tuning_parts(graphs: list[HeteroData], tc: TrainConfig, seed: int) -> dict[str, list[str]]:
    """The train stage's split of ``graphs`` (same fractions, seed and stratification) without its test part."""
    parts = GraphDataModule(graphs, tc.split, tc.batch_size, seed).parts
    return {"train": parts["train"], "val": parts["val"], "test": []}


def trial_train_config(tc: TrainConfig, tune: TuneConfig, params: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of one trial: ``tc`` with the tune stage's members and epochs, no warm start, and the
    trial's ``params`` (width_f, width_b, width_e, depth, learning_rate)."""
    return TrainConfig.model_validate({**tc.model_dump(), "members": tune.members, "epochs": tune.epochs,
                                       "warm_start": None, "tuned_params": None, **params})


def validation_score(graphs: list[HeteroData], parts: dict[str, list[str]], tc: TrainConfig, seed: int,
                     callbacks: list[pl.Callback] | None = None) -> float:
    """Mean validation loss (Angstrom) of the selected members after training on ``parts['train']``;
    graphs of trajectories outside ``parts`` are dropped before training. Raises optuna.TrialPruned
    from a pruning callback and TrainingDiverged on a NaN or diverging loss."""
    from dislomob.train.stage import train_ensemble

    if parts.get("test"):
        raise ValueError(f"a tuning trial must not see test trajectories: got test part {parts['test']}")
    with tempfile.TemporaryDirectory(prefix="dislomob-trial-") as work:
        result = train_ensemble(graphs, tc, seed, work, progress=False, parts=parts, callbacks=callbacks)
    val = torch.tensor(result.val_loss, dtype=torch.float64)
    return float(val[result.model.active].mean())
