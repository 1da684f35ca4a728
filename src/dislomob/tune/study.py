"""The Optuna study of the ``tune`` stage: its name (a fingerprint of what makes trial values comparable),
its RDB storage, sampler and pruner, and how many of its trials are finished (the resume point)."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import optuna

from dislomob.config import Config

# train keys that a trial overrides or that do not change a trial's value
_TRAIN_KEYS_IGNORED = ("members", "epochs", "width", "width_f", "width_b", "width_e", "depth", "learning_rate",
                       "warm_start", "tuned_params", "tracking_uri", "experiment", "model_dir", "threads", "accelerator")
_TUNE_KEYS_IGNORED = ("n_trials", "timeout_s", "storage", "study_name", "experiment", "out_dir")
HEARTBEAT_S = 10


def graphs_digest(graphs_dir: str | Path) -> str:
    """SHA-256 over the names and bytes of the graph files (``*.pt``) in ``graphs_dir``."""
    h = hashlib.sha256()
    for f in sorted(Path(graphs_dir).glob("*.pt")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def study_setup(cfg: Config, graphs_dir: str | Path) -> dict[str, Any]:
    """What makes trial values comparable: seed, the tune settings of a trial, the train settings it keeps
    and the graph data. Changing any of them starts a new study; ``n_trials``/``timeout_s`` do not."""
    train = {k: v for k, v in cfg.train.model_dump(mode="json").items() if k not in _TRAIN_KEYS_IGNORED}
    tune = {k: v for k, v in cfg.tune.model_dump(mode="json").items() if k not in _TUNE_KEYS_IGNORED}
    return {"seed": cfg.seed, "tune": tune, "train": train, "graphs_sha256": graphs_digest(graphs_dir)}


def study_name(cfg: Config, setup: dict[str, Any]) -> str:
    """``tune.study_name`` plus a 10-hex-digit fingerprint of :func:`study_setup`."""
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:10]
    return f"{cfg.tune.study_name}-{digest}"


def open_study(cfg: Config, name: str, setup: dict[str, Any]) -> optuna.Study:
    """Create or load study ``name`` in ``tune.storage`` (RDB; trials of a killed process fail after a
    missed heartbeat), with a TPE sampler seeded by the seed and the number of trials so far (a resumed
    study does not redraw the first invocation's points) and the configured pruner."""
    tune = cfg.tune
    url = tune.storage
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=3 * HEARTBEAT_S)
    existing = {s.study_name: s.n_trials for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)}
    sampler = optuna.samplers.TPESampler(n_startup_trials=tune.sampler_startup_trials,
                                         seed=(cfg.seed + existing.get(name, 0)) % 2**32)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=tune.pruner_startup_trials, n_warmup_steps=tune.pruner_warmup_epochs)
        if tune.pruner == "median" else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    if name not in existing:
        study.set_user_attr("setup", setup)
    return study


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials with a result: complete, pruned, or failed because training diverged (a bad learning rate
    is an answer too); trials of a killed process (failed by the heartbeat, or still RUNNING) are not."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=states)
            if t.state != optuna.trial.TrialState.FAIL or "diverged" in t.user_attrs]
