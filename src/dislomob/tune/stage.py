"""The ``tune`` stage: graphs -> Optuna study (resumable, pruned, one MLflow child run per trial) ->
``<out_dir>/best_params.json`` (read by the ``train`` stage) and the metrics JSON.

Losses in Angstrom, times in seconds. A rerun with the same storage and setup continues the study: it
counts the finished trials and runs only the rest (``tune.n_trials`` in all).
"""

from __future__ import annotations

import logging
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from dislomob.atomic import remove_stale_temps, write_json
from dislomob.config import Config
from dislomob.errors import DislomobError
from dislomob.tracking import end_orphaned_runs, ended_on_exit, owner_tags, tracking_setup
from dislomob.tune.space import outside, suggest
from dislomob.tune.study import finished_trials, open_study, study_name, study_setup

MONITOR = "val_loss"  # ensemble-mean validation loss per epoch (Angstrom), logged by EnsembleModule


@contextmanager
def _quiet_lightning():
    """Lightning's per-Trainer info lines (devices, tips, 'max_epochs reached') off while trials run."""
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def _parent_run(study: optuna.Study, experiment_id: str):
    """Reopen the study's MLflow run (resume) or start one; the run id is kept in the study's user attrs."""
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = study.user_attrs.get("mlflow_run_id")
    if run_id:
        try:
            known = mlflow.get_run(run_id).info.experiment_id == experiment_id
        except MlflowException:
            known = False
        if known:
            run = mlflow.start_run(run_id=run_id)
            mlflow.set_tags(owner_tags())
            return run, False
    run = mlflow.start_run(run_name="tune", tags={**owner_tags(), "optuna.study": study.study_name})
    study.set_user_attr("mlflow_run_id", run.info.run_id)
    return run, True


def make_objective(cfg: Config, graphs: list, parts: dict[str, list[str]], name: str):
    """The Optuna objective: one nested MLflow run per trial, the pruning callback on ``val_loss``,
    the selected members' validation loss (Angstrom) as the value; a diverged training fails the trial."""
    import mlflow
    from optuna_integration import PyTorchLightningPruningCallback

    from dislomob.train.module import TrainingDiverged
    from dislomob.tune.objective import trial_train_config, validation_score

    tune = cfg.tune

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, tune)
        tc = trial_train_config(cfg.train, tune, params)
        run = mlflow.start_run(run_name=f"trial-{trial.number:03d}", nested=True,
                               tags={**owner_tags(), "optuna.study": name, "optuna.trial": str(trial.number)})
        trial.set_user_attr("mlflow_run_id", run.info.run_id)
        mlflow.log_params({**params, "trial": trial.number, "members": tc.members, "epochs": tc.epochs})
        status, state = "FAILED", "FAIL"
        try:
            callbacks = [PyTorchLightningPruningCallback(trial, monitor=MONITOR)] if tune.pruner != "none" else None
            value = validation_score(graphs, parts, tc, cfg.seed, callbacks)
            mlflow.log_metric("val_loss_selected_mean_angstrom", value)
            status, state = "FINISHED", "COMPLETE"
            return value
        except optuna.TrialPruned:  # the child run's per-epoch val_loss shows where
            status, state = "FINISHED", "PRUNED"
            raise
        except TrainingDiverged as err:
            trial.set_user_attr("diverged", str(err))
            mlflow.set_tag("failure", str(err)[:5000])
            raise
        finally:
            mlflow.set_tag("optuna.state", state)
            mlflow.end_run(status)

    return objective


def _enqueue_reference(study: optuna.Study, cfg: Config) -> None:
    """Make the first trial of a new study the ``train`` section's own widths, depth and learning rate (when
    inside the space), so the study reports how the untuned setting scores under the same trial budget."""
    tc = cfg.train
    ref = {"width_f": tc.width_f or tc.width, "width_b": tc.width_b or tc.width, "width_e": tc.width_e or tc.width,
           "depth": tc.depth, "learning_rate": tc.learning_rate}
    if not outside(ref, cfg.tune):
        study.enqueue_trial(ref)
        study.set_user_attr("reference_trial", 0)


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Counts of finished trials by state, the best trial, the spread of complete trials' values and the
    value of the reference trial (the train section's own setting) when there is one."""
    done = finished_trials(study)
    values = [t.value for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    out: dict[str, Any] = {
        "trials_finished": len(done), "trials_complete": len(values),
        "trials_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in done),
        "trials_diverged": sum(t.state == optuna.trial.TrialState.FAIL for t in done)}
    if values:
        best = study.best_trial
        out.update({"best_trial": best.number, "best_val_loss_angstrom": best.value,
                    **{f"best_{k}": v for k, v in best.params.items()},
                    "val_loss_min_angstrom": min(values), "val_loss_median_angstrom": statistics.median(values),
                    "val_loss_max_angstrom": max(values),
                    "val_loss_std_angstrom": statistics.pstdev(values) if len(values) > 1 else 0.0})
    ref = study.user_attrs.get("reference_trial")
    if ref is not None and study.trials[ref].state == optuna.trial.TrialState.COMPLETE:
        out["reference_val_loss_angstrom"] = study.trials[ref].value
    return out


def tune_stage(cfg: Config, graphs_dir: str | Path, out_dir: str | Path, metrics_path: str | Path,
               progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the study until ``tune.n_trials`` trials are finished or ``tune.timeout_s`` passed;
    write ``best_params.json`` and the metrics; return the metrics (JSON)."""
    import mlflow

    from dislomob.train.data import load_graph_dir
    from dislomob.tune.objective import tuning_parts

    tune, t0 = cfg.tune, time.perf_counter()
    out_dir = Path(out_dir)
    remove_stale_temps(out_dir)
    optuna.logging.set_verbosity(optuna.logging.INFO if progress else optuna.logging.WARNING)
    graphs = load_graph_dir(graphs_dir)
    parts = tuning_parts(graphs, cfg.train, cfg.seed)
    setup = study_setup(cfg, graphs_dir)
    name = study_name(cfg, setup)
    study = open_study(cfg, name, setup)
    experiment_id = tracking_setup(cfg.train.tracking_uri, tune.experiment)
    end_orphaned_runs(experiment_id)
    if not study.trials:
        _enqueue_reference(study, cfg)
    before = len(finished_trials(study))
    remaining = max(0, tune.n_trials - before)
    run, new = _parent_run(study, experiment_id)
    with ended_on_exit(run):
        if new:
            mlflow.log_params({**{f"tune.{k}": v for k, v in setup["tune"].items()}, "seed": cfg.seed,
                               "graphs_sha256": setup["graphs_sha256"], "n_graphs": len(graphs),
                               "train_trajectories": len(parts["train"]), "val_trajectories": len(parts["val"])})
        mlflow.set_tags({"tune.n_trials": str(tune.n_trials), "tune.timeout_s": str(tune.timeout_s),
                         "optuna.storage": tune.storage})
        if remaining:
            from dislomob.train.module import TrainingDiverged

            with _quiet_lightning():
                study.optimize(make_objective(cfg, graphs, parts, name), n_trials=remaining, timeout=tune.timeout_s,
                               catch=(TrainingDiverged,), gc_after_trial=True)
        summary = study_summary(study)
        if "best_trial" not in summary:
            raise DislomobError(f"study {name} in {tune.storage} has no complete trial ({summary['trials_pruned']} "
                                f"pruned, {summary['trials_diverged']} diverged): raise tune.n_trials or "
                                "tune.timeout_s, or widen tune.learning_rate_range")
        best = study.best_trial
        record = {"params": dict(best.params),
                  "study": {"name": name, "storage": tune.storage, "trial": best.number,
                            "val_loss_angstrom": best.value, "members": tune.members, "epochs": tune.epochs,
                            "mlflow_run_id": run.info.run_id, "trials_finished": summary["trials_finished"]}}
        write_json(out_dir / "best_params.json", record)
        metrics = {**summary, "trials_run_now": len(finished_trials(study)) - before,
                   "stage_wall_s": time.perf_counter() - t0}
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
                           step=summary["trials_finished"])
        mlflow.log_artifact(str(out_dir / "best_params.json"))
    remove_stale_temps(Path(metrics_path).parent)
    write_json(metrics_path, metrics)
    return metrics
