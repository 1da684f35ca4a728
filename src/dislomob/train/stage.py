"""The ``train`` stage: graphs -> trained PI-GNN ensemble + fitted baseline + metrics, tracked in MLflow.

Reads every graph file ``<graphs_dir>/*.pt``; writes ``<model_dir>/ensemble.pt`` (weights, scales,
top members), ``<model_dir>/last_good.pt`` (checkpoint of the last finite epoch),
``<model_dir>/baseline.json`` (fitted law), ``<model_dir>/split.json`` (trajectories per split),
``<model_dir>/run.json`` (MLflow run id)
and the metrics JSON. Lengths in Angstrom, times in ps.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob.atomic import remove_stale_temps, write_json
from dislomob.config import Config, TrainConfig
from dislomob.model.phenomenological import fit_baseline
from dislomob.model.ensemble import load_ensemble, save_ensemble, select_top, warm_start
from dislomob.model.laws import law_name, law_spec, new_law
from dislomob.train.bootstrap import member_weights
from dislomob.train.data import GraphDataModule, load_graph_dir
from dislomob.train.evaluate import character_speeds, evaluation_metrics
from dislomob.train.module import EnsembleModule, TrainingDiverged
from dislomob.tracking import end_orphaned_runs, ended_on_exit, owner_tags, tracking_setup


@dataclass
class TrainResult:
    """A trained ensemble with its member history, split and timing."""

    model: torch.nn.Module
    data: GraphDataModule
    history: list[dict[str, list[float]]]
    val_loss: list[float]
    wall_s: float
    best_epoch: int


def build_model(tc: TrainConfig, seed: int, train_graphs: list[HeteroData]) -> torch.nn.Module:
    """A fresh law ``tc.law`` (dislomob.model.laws) with its scales fitted on the training graphs, or the
    ``tc.warm_start`` file's weights and scales in a law of the same kind and sizes."""
    if tc.warm_start:
        previous, _ = load_ensemble(tc.warm_start)
        if law_name(previous) != tc.law:
            raise ValueError(f"train.warm_start={tc.warm_start!r} holds a {law_name(previous)!r} law: allowed a "
                             f"file of train.law={tc.law!r}")
        spec = law_spec(tc.law)
        model = spec.model(spec.from_config(tc, seed))
        warm_start(model, previous)
        return model
    return new_law(tc, seed, train_graphs)


def train_ensemble(graphs: list[HeteroData], tc: TrainConfig, seed: int, model_dir: str | Path,
                   progress: bool = True, parts: dict[str, list[str]] | None = None,
                   callbacks: list[pl.Callback] | None = None) -> TrainResult:
    """Train all members in one Lightning run, restore the epoch with the lowest mean validation loss,
    then keep the top ``tc.top_fraction`` of members by their validation loss at that epoch. ``parts``
    fixes the split (trajectory ids per part) instead of drawing it from ``tc.split``; ``callbacks`` go
    to the Lightning Trainer (e.g. the ``tune`` stage's pruning callback).

    Raises TrainingDiverged (message names epoch and the last good checkpoint) on a NaN or diverging loss.
    """
    torch.set_num_threads(tc.threads)
    pl.seed_everything(seed, workers=True, verbose=False)
    data = GraphDataModule(graphs, tc.split, tc.batch_size, seed, parts)
    model = build_model(tc, seed, data.sets["train"])
    ckpt = Path(model_dir) / "last_good.pt"
    weights = member_weights(data.parts["train"], tc.members, seed) if tc.bootstrap else None
    module = EnsembleModule(model, tc.learning_rate, tc.divergence_factor, ckpt, tc.weight_decay, weights)
    trainer = pl.Trainer(max_epochs=tc.epochs, accelerator=tc.accelerator, devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=callbacks)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=data)
    wall = time.perf_counter() - t0
    if module.diverged is not None:
        raise TrainingDiverged(module.diverged)
    if module.best is None:
        raise TrainingDiverged("training finished without a finite validation loss")
    if tc.restore_best_epoch:
        _, best_epoch, val, weights = module.best
        model.load_state_dict(weights)
    else:
        best_epoch, val = len(module.history) - 1, module.history[-1]["val"]
    select_top(model, torch.tensor(val), tc.top_fraction)
    return TrainResult(model, data, module.history, val, wall, best_epoch)


def _mlflow_run(tc: TrainConfig):
    """Point MLflow at ``tc.tracking_uri`` and open a run in ``tc.experiment`` (orphaned runs ended first)."""
    import mlflow

    experiment_id = tracking_setup(tc.tracking_uri, tc.experiment)
    end_orphaned_runs(experiment_id)
    return ended_on_exit(mlflow.start_run(run_name="train", tags=owner_tags()))


def _prepare_model_dir(model_dir: Path) -> None:
    """Repair what a killed run left: temporary files, and a ``last_good.pt`` of an earlier run (the
    checkpoint is rewritten by this run each finite epoch; ``run.json`` lists the files of its run)."""
    from dislomob.atomic import remove_stale_temps

    remove_stale_temps(model_dir)
    (model_dir / "last_good.pt").unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@torch.no_grad()
def _inference_rate(model: torch.nn.Module, graphs: list[HeteroData], batch_size: int) -> float:
    """Graphs per second of an ensemble forward pass (all members) over ``graphs``."""
    batches = list(DataLoader(graphs, batch_size=batch_size))
    t0 = time.perf_counter()
    for b in batches:
        model(b)
    return len(graphs) / max(time.perf_counter() - t0, 1e-9)


def train_stage(cfg: Config, graphs_dir: str | Path, model_dir: str | Path, metrics_path: str | Path,
                progress: bool = True) -> dict[str, Any]:
    """Run the train stage; return the metrics written to ``metrics_path`` (JSON)."""
    import mlflow

    from dislomob.tune.params import tuned_train_config

    tc = tuned_train_config(cfg.train)  # the tune stage's best widths, depth, learning rate (missing file: error)
    model_dir = Path(model_dir)
    t0 = time.perf_counter()
    graphs = load_graph_dir(graphs_dir)
    _prepare_model_dir(model_dir)
    with _mlflow_run(tc):
        mlflow.log_params({**{f"train.{k}": v for k, v in tc.model_dump().items()}, "seed": cfg.seed,
                           "n_graphs": len(graphs), "graphs_dir": str(graphs_dir)})
        result = train_ensemble(graphs, tc, cfg.seed, model_dir, progress)
        sets = result.data.sets
        base_batch = next(iter(DataLoader(sets["train"], batch_size=len(sets["train"]))))
        law, fit = fit_baseline(base_batch, steps=tc.baseline_steps)
        metrics = evaluation_metrics(result.model, law, sets["test"])
        metrics.update(character_speeds(result.model, graphs))
        metrics.update(law_consistency(result.model, law, cfg))
        metrics.update({"train_wall_s": result.wall_s, "stage_wall_s": time.perf_counter() - t0,
                        "inference_graphs_per_s": _inference_rate(result.model, sets["test"], tc.batch_size),
                        "members": tc.members, "members_selected": int(result.model.active.sum()),
                        "best_epoch": result.best_epoch,
                        "val_loss_selected_mean_angstrom": float(torch.tensor(result.val_loss)[result.model.active].mean())})
        save_ensemble(result.model, model_dir / "ensemble.pt", {"val_loss": result.val_loss, "split": result.data.parts,
                                                                "seed": cfg.seed, "best_epoch": result.best_epoch})
        write_json(model_dir / "baseline.json", asdict(fit))
        write_json(model_dir / "split.json", result.data.parts)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        for name in ("ensemble.pt", "baseline.json", "split.json"):
            mlflow.log_artifact(str(model_dir / name), artifact_path="model")
        files = {n: _sha256(model_dir / n) for n in ("ensemble.pt", "last_good.pt", "baseline.json", "split.json")
                 if (model_dir / n).is_file()}
        write_json(model_dir / "run.json", {"mlflow_run_id": mlflow.active_run().info.run_id, "sha256": files})
    remove_stale_temps(Path(metrics_path).parent)
    write_json(metrics_path, metrics)
    return metrics


def law_consistency(model: torch.nn.Module, law: torch.nn.Module, cfg: Config) -> dict[str, float | None]:
    """``consistency_*`` metrics (dislomob.model.consistency) of the ensemble and ``baseline_consistency_*``
    of the fitted law, on straight dipoles built like the dataset's cells."""
    from dislomob.model.consistency import consistency_checks

    out: dict[str, float | None] = dict(consistency_checks(model, cfg)["metrics"])
    for k, v in consistency_checks(law, cfg)["metrics"].items():
        if "spread" not in k:
            out[f"baseline_{k}"] = v
    return out
