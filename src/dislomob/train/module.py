"""LightningModule training all ensemble members at once; per-epoch losses to MLflow; divergence stop.

The optimized objective is the symmetric node-to-segment distance (Angstrom) summed over the graphs
of a batch (paper Eq. 5) and over members, so each member gets exactly the gradient of its own loss
(Adam acts element-wise, members stay independent). With ``graph_weights`` (dislomob.train.bootstrap)
each member weighs each graph by how often it drew the graph's trajectory. Logged losses are
unweighted per-graph means per member.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor

from dislomob.model.ensemble import save_ensemble
from dislomob.model.loss import displacement_loss
from dislomob.train.bootstrap import batch_weights


class TrainingDiverged(RuntimeError):
    """The loss became non-finite or grew past the divergence limit; the message names the epoch and checkpoint."""


class EnsembleModule(pl.LightningModule):
    """Trains a law (dislomob.model.laws; the PI-GNN ensemble); keeps per-member train/val loss history, the last good checkpoint on disk
    and, in memory, the weights of the epoch with the lowest ensemble-mean validation loss."""

    def __init__(self, model: torch.nn.Module, learning_rate: float, divergence_factor: float = 100.0,
                 checkpoint_path: str | Path | None = None, weight_decay: float = 0.0,
                 graph_weights: dict[str, Tensor] | None = None):
        super().__init__()
        self.model = model
        self.graph_weights = graph_weights
        self.learning_rate, self.divergence_factor, self.weight_decay = learning_rate, divergence_factor, weight_decay
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.first_loss: float | None = None
        self.diverged: str | None = None
        self.history: list[dict[str, list[float]]] = []
        m = model.hp.members
        self._sums = {k: torch.zeros(m, dtype=torch.float64) for k in ("train", "val")}
        self._counts = {"train": 0, "val": 0}
        self._val_epoch: list[float] | None = None
        self.best: tuple[float, int, list[float], dict[str, Tensor]] | None = None  # (mean val, epoch, val, weights)

    def forward(self, batch) -> dict[str, Tensor]:
        return self.model(batch)

    def _graph_loss(self, batch) -> Tensor:
        """Loss (M, n_graphs) Angstrom of every member on every graph of ``batch``."""
        return displacement_loss(batch, self.model(batch)["dx"])

    def _stop(self, why: str) -> None:
        where = (f"last good checkpoint kept at {self.checkpoint_path}"
                 if self.checkpoint_path is not None and self.checkpoint_path.exists() else "no good checkpoint yet")
        self.diverged = f"training stopped at epoch {self.current_epoch}: {why}; {where}"
        self.trainer.should_stop = True

    def training_step(self, batch, batch_idx: int) -> Tensor | None:
        per_graph = self._graph_loss(batch)
        member = per_graph.mean(-1)
        mean = float(member.detach().mean())
        if not torch.isfinite(member).all():
            bad = torch.nonzero(~torch.isfinite(member)).flatten().tolist()
            self._stop(f"non-finite loss {mean} (members {bad}) at step {batch_idx}")
            return None
        if self.first_loss is None:
            self.first_loss = mean
        elif mean > self.divergence_factor * self.first_loss:
            self._stop(f"loss {mean:.4g} Angstrom exceeds {self.divergence_factor} x the first loss {self.first_loss:.4g}")
            return None
        self._sums["train"] += member.detach().double().cpu() * batch.num_graphs
        self._counts["train"] += batch.num_graphs
        self.log("train_loss", mean, prog_bar=True, batch_size=batch.num_graphs)
        if self.graph_weights is not None:
            per_graph = per_graph * batch_weights(self.graph_weights, batch.traj_id).to(per_graph)
        return per_graph.sum()

    def validation_step(self, batch, batch_idx: int) -> None:
        if self.trainer.sanity_checking:
            return
        member = self._graph_loss(batch).mean(-1)
        self._sums["val"] += member.detach().double().cpu() * batch.num_graphs
        self._counts["val"] += batch.num_graphs

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or self._counts["val"] == 0:
            return
        val = (self._sums["val"] / self._counts["val"]).tolist()
        self._val_epoch = val
        self._sums["val"].zero_()
        self._counts["val"] = 0
        self.log("val_loss", float(torch.tensor(val).mean()), prog_bar=True)

    def on_train_epoch_end(self) -> None:
        if self.diverged is not None or self._counts["train"] == 0:
            return
        train = (self._sums["train"] / self._counts["train"]).tolist()
        self._sums["train"].zero_()
        self._counts["train"] = 0
        val = self._val_epoch if self._val_epoch is not None else [float("nan")] * len(train)
        self.history.append({"train": train, "val": val})
        _log_epoch(self.current_epoch, train, val)
        if not all(torch.isfinite(torch.tensor(train + val)).tolist()):
            return
        if self.checkpoint_path is not None:
            save_ensemble(self.model, self.checkpoint_path, {"epoch": self.current_epoch, "val_loss": val})
        mean_val = sum(val) / len(val)
        if self.best is None or mean_val < self.best[0]:
            weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best = (mean_val, self.current_epoch, val, weights)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


def _log_epoch(epoch: int, train: list[float], val: list[float]) -> None:
    """Ensemble-mean and per-member train/val loss (Angstrom) to the active MLflow run, one batch call."""
    import mlflow

    if mlflow.active_run() is None:
        return
    metrics = {"train_loss": sum(train) / len(train), "val_loss": sum(val) / len(val)}
    for m, (t, v) in enumerate(zip(train, val)):
        metrics[f"train_loss_m{m:02d}"] = t
        metrics[f"val_loss_m{m:02d}"] = v
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=epoch)
