"""Tuning (issue 12): the search space, per-net widths (and old ensemble files), a validation-only
objective, the Lightning pruning callback, a resumable study with MLflow child runs, and the
best-parameters file that the train stage reads. Tiny analytic trajectories (model_helpers), no LAMMPS."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import optuna
import pytest
import torch
from optuna_integration import PyTorchLightningPruningCallback

from dislomob import graph_schema as S
from dislomob.config import Config, ConfigError, TrainConfig, TuneConfig, parse_config
from dislomob.errors import InputFileError
from dislomob.model.ensemble import ENSEMBLE_FORMAT_VERSION, load_ensemble, save_ensemble, warm_start
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams
from dislomob.train.stage import build_model, train_stage
from dislomob.tune.objective import trial_train_config, tuning_parts, validation_score
from dislomob.tune.params import apply_tuned_params
from dislomob.tune.space import TUNED_KEYS, outside, suggest
from model_helpers import graph_record, straight_graph, torch_one_thread, trajectory_graphs  # noqa: F401

ANGLES = (0.0, 20.0, 45.0, 70.0, 90.0, 110.0, 135.0, 160.0, 180.0, 90.0)
TUNED = {"width_f": 6, "width_b": 3, "width_e": 5, "depth": 1, "learning_rate": 0.02}


def _dataset(n_frames: int = 2) -> list:
    graphs = []
    for i, a in enumerate(ANGLES):
        graphs += trajectory_graphs(f"traj{i:02d}", a, 0.3 + 0.2 * (i % 2), 300.0 + 200.0 * ((i // 2) % 2),
                                    n_frames=n_frames)
    return graphs


def _tc(**kw) -> TrainConfig:
    base = dict(members=2, width=4, depth=1, epochs=3, batch_size=4, learning_rate=1e-2, threads=1,
                tuned_params=None)
    return TrainConfig(**{**base, **kw})


def test_search_space_draws_inside_its_bounds_and_bad_ranges_are_named() -> None:
    tune = TuneConfig(width_range=(3, 17), depth_range=(1, 2), learning_rate_range=(1e-4, 3e-2))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(60):
        trial = study.ask()
        p = suggest(trial, tune)
        study.tell(trial, 0.0)
        drawn.append(p)
        assert tuple(p) == TUNED_KEYS and outside(p, tune) == []
        assert all(isinstance(p[k], int) for k in ("width_f", "width_b", "width_e", "depth"))
    for key, (low, high) in (("width_f", (3, 17)), ("width_e", (3, 17)), ("depth", (1, 2))):
        values = {p[key] for p in drawn}
        assert low <= min(values) and max(values) <= high and len(values) > 1
    assert all(1e-4 <= p["learning_rate"] <= 3e-2 for p in drawn)
    assert outside({**drawn[0], "width_b": 18}, tune) == ["width_b=18 (allowed 3 to 17)"]
    with pytest.raises(ConfigError, match=r"tune.width_range=\[40, 8\]"):
        parse_config({"tune": {"width_range": [40, 8]}})


def test_per_net_widths_give_nets_of_those_widths_each_equal_to_a_uniform_model() -> None:
    g = straight_graph(60.0, 0.4, 400.0, n=7, wiggle=1.0)
    mixed = EnsemblePIGNN(PIGNNHParams(members=3, width=20, depth=2, seed=5, width_f=4, width_b=7, width_e=11))
    assert mixed.trunk is None and mixed.hp.net_widths == (4, 7, 11)
    for trunk, head, w in zip(mixed.trunks, (mixed.head_f, mixed.head_b, mixed.head_e), (4, 7, 11)):
        assert all(layer.node_from_gp.out_features == w for layer in trunk.layers) and head.in_features == w
    out = mixed(g)
    # each net's weights come from its seeds alone: the F-net equals a uniform width-4 model's, and so on
    for key, w in (("force", 4), ("drag", 7), ("energy_ev", 11)):
        uniform = EnsemblePIGNN(PIGNNHParams(members=3, width=w, depth=2, seed=5))
        assert torch.allclose(out[key], uniform(g)[key], rtol=1e-5, atol=1e-7), key
    # equal per-net widths keep the stacked layout of the uniform model
    same = EnsemblePIGNN(PIGNNHParams(members=3, width=20, depth=2, seed=5, width_f=9, width_b=9, width_e=9))
    assert same.trunks is None and same.trunk.layers[0].node_from_gp.out_features == 9


def test_old_ensemble_files_load_and_per_net_files_round_trip(tmp_path) -> None:
    g = straight_graph(30.0, 0.5, 300.0, n=6, wiggle=1.0)
    uniform = EnsemblePIGNN(PIGNNHParams(members=2, width=6, depth=2, seed=1))
    # a file in the layout written before per-net widths: hparams without width_f/b/e
    hp_old = {k: v for k, v in asdict(uniform.hp).items() if not k.startswith("width_")}
    torch.save({"format_version": ENSEMBLE_FORMAT_VERSION, "hparams": hp_old, "state_dict": uniform.state_dict(),
                "extra": {}}, tmp_path / "old.pt")
    loaded, _ = load_ensemble(tmp_path / "old.pt")
    assert loaded.hp.net_widths == (6, 6, 6) and torch.equal(loaded(g)["dx"], uniform(g)["dx"])
    save_ensemble(uniform, tmp_path / "uniform.pt")  # a uniform model still writes the old layout
    assert set(torch.load(tmp_path / "uniform.pt", weights_only=True)["hparams"]) == set(hp_old)
    mixed = EnsemblePIGNN(PIGNNHParams(members=2, width=6, depth=2, seed=1, width_b=3, width_e=8))
    save_ensemble(mixed, tmp_path / "mixed.pt")
    again, _ = load_ensemble(tmp_path / "mixed.pt")
    assert again.hp.net_widths == (6, 3, 8) and torch.equal(again(g)["dx"], mixed(g)["dx"])
    fresh = EnsemblePIGNN(PIGNNHParams(members=2, width=6, depth=2, seed=9, width_b=3, width_e=8))
    warm_start(fresh, again)  # the AL warm start with per-net widths
    assert torch.equal(fresh(g)["dx"], mixed(g)["dx"])
    with pytest.raises(ValueError, match="net_widths"):
        warm_start(uniform, again)


def _move_targets(g) -> None:
    """Other MD answers for a graph: its later line (the loss's target) and nodal displacements shifted."""
    shift = torch.tensor([2.0, 1.0, 0.5])
    g[S.TARGET].pos = g[S.TARGET].pos + shift
    g[S.NODE].y = g[S.NODE].y + shift


def test_objective_sees_no_test_trajectory(tmp_path) -> None:
    graphs = _dataset()
    tc = _tc()
    parts = tuning_parts(graphs, tc, seed=3)
    full = {k: v for k, v in parts.items() if k != "test"}
    from dislomob.train.data import GraphDataModule

    test_ids = GraphDataModule(graphs, tc.split, tc.batch_size, 3).parts["test"]
    assert parts["test"] == [] and test_ids and not set(test_ids) & set(full["train"] + full["val"])
    score = validation_score(graphs, parts, tc, seed=3)
    # other targets on the test trajectories: the same trial value, to the bit
    changed = []
    for g in graphs:
        g = g.clone()
        if str(g.traj_id) in test_ids:
            _move_targets(g)
        changed.append(g)
    assert validation_score(changed, tuning_parts(changed, tc, 3), tc, seed=3) == score
    # other targets on a validation trajectory change it
    val_id = parts["val"][0]
    moved = [g.clone() for g in graphs]
    for g in moved:
        if str(g.traj_id) == val_id:
            _move_targets(g)
    assert validation_score(moved, parts, tc, seed=3) != score
    with pytest.raises(ValueError, match="test"):
        validation_score(graphs, {**parts, "test": test_ids}, tc, seed=3)


def test_lightning_pruning_callback_prunes_a_clearly_worse_trial() -> None:
    graphs = _dataset()
    tc = _tc(epochs=4, batch_size=2)
    parts = tuning_parts(graphs, tc, seed=3)
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1))

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-9, 1.0, log=True)
        cb = PyTorchLightningPruningCallback(trial, monitor="val_loss")  # works on lightning.pytorch 2.6
        return validation_score(graphs, parts, _tc(epochs=4, batch_size=2, learning_rate=lr), 3, [cb])

    study.enqueue_trial({"learning_rate": 3e-2})
    study.enqueue_trial({"learning_rate": 1e-9})  # does not learn: its validation loss stays at the start
    study.optimize(objective, n_trials=2)
    good, bad = study.trials
    assert good.state == optuna.trial.TrialState.COMPLETE and sorted(good.intermediate_values) == [0, 1, 2, 3]
    assert bad.state == optuna.trial.TrialState.PRUNED
    last = max(bad.intermediate_values)
    assert 1 <= last < 3 and bad.intermediate_values[last] > good.intermediate_values[last]


def _stage_config(tmp_path, **tune) -> Config:
    data = Config().model_dump()
    data["train"].update(_tc().model_dump(), tracking_uri=f"sqlite:///{tmp_path}/mlflow/mlflow.db",
                         tuned_params=str(tmp_path / "tune" / "best_params.json"))
    data["tune"].update({"n_trials": 2, "timeout_s": None, "members": 2, "epochs": 2, "width_range": [2, 6],
                         "depth_range": [1, 2], "learning_rate_range": [3e-3, 3e-2], "sampler_startup_trials": 2,
                         "pruner": "none", "storage": f"sqlite:///{tmp_path}/mlflow/optuna.db",
                         "experiment": "test-tune", **tune})
    return parse_config(data)


def _graph_dir(tmp_path):
    from dislomob.features.graphs import save_graphs

    graphs = _dataset()
    for tid in sorted({str(g.traj_id) for g in graphs}):
        save_graphs(tmp_path / "graphs" / f"{tid}.pt", [graph_record(g) for g in graphs if str(g.traj_id) == tid],
                    {"traj": tid})
    return tmp_path / "graphs"


@pytest.mark.slow
def test_study_resumes_with_child_runs_and_train_reads_best_params(tmp_path) -> None:
    import mlflow

    from dislomob.tune.stage import tune_stage

    graphs_dir = _graph_dir(tmp_path)
    cfg = _stage_config(tmp_path)
    first = tune_stage(cfg, graphs_dir, tmp_path / "tune", tmp_path / "metrics" / "tune.json", progress=False)
    assert first["trials_run_now"] == 2 and first["trials_finished"] == 2
    record = json.loads((tmp_path / "tune" / "best_params.json").read_text())
    # a rerun with a larger budget runs only the missing trial, in the same study and MLflow study run
    more = _stage_config(tmp_path, n_trials=3)
    second = tune_stage(more, graphs_dir, tmp_path / "tune", tmp_path / "metrics" / "tune.json", progress=False)
    assert second["trials_run_now"] == 1 and second["trials_finished"] == 3
    again = json.loads((tmp_path / "tune" / "best_params.json").read_text())
    assert again["study"]["name"] == record["study"]["name"]
    assert again["study"]["mlflow_run_id"] == record["study"]["mlflow_run_id"]
    assert tune_stage(more, graphs_dir, tmp_path / "tune", tmp_path / "metrics" / "tune.json",
                      progress=False)["trials_run_now"] == 0
    study = optuna.load_study(study_name=again["study"]["name"], storage=more.tune.storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    # the first trial is the train section's own setting, for reference
    assert study.trials[0].params == {"width_f": 4, "width_b": 4, "width_e": 4, "depth": 1, "learning_rate": 1e-2}
    assert first["reference_val_loss_angstrom"] == study.trials[0].value >= study.best_value
    assert again["params"] == study.best_params and again["study"]["val_loss_angstrom"] == study.best_value
    assert all(outside(t.params, more.tune) == [] for t in study.trials)
    mlflow.set_tracking_uri(more.train.tracking_uri)
    children = mlflow.search_runs(experiment_names=["test-tune"],
                                  filter_string=f"tags.mlflow.parentRunId = '{again['study']['mlflow_run_id']}'")
    assert len(children) == 3 and set(children["status"]) == {"FINISHED"}
    assert sorted(children["tags.optuna.trial"].astype(int)) == [0, 1, 2]
    # a changed setup (epochs per trial) is another study: values of different setups are not mixed
    other = tune_stage(_stage_config(tmp_path, epochs=1, n_trials=1), graphs_dir, tmp_path / "tune2",
                       tmp_path / "metrics" / "tune2.json", progress=False)
    assert other["trials_run_now"] == 1
    # the train stage's config takes the best widths, depth and learning rate; the model has those widths
    tc = apply_tuned_params(more.train, tmp_path / "tune" / "best_params.json")
    assert {k: getattr(tc, k) for k in TUNED_KEYS} == study.best_params
    model = build_model(tc, 0, _dataset()[:2])
    assert model.hp.net_widths == (tc.width_f, tc.width_b, tc.width_e) and model.hp.depth == tc.depth


def test_best_params_file_applies_and_bad_values_are_named(tmp_path) -> None:
    path = tmp_path / "best_params.json"
    path.write_text(json.dumps({"params": TUNED, "study": {}}))
    tc = apply_tuned_params(_tc(), path)
    assert {k: getattr(tc, k) for k in TUNED_KEYS} == TUNED and tc.members == 2
    assert build_model(tc, 0, _dataset()[:2]).hp.net_widths == (6, 3, 5)
    assert trial_train_config(tc, TuneConfig(members=3, epochs=7), TUNED).members == 3
    for bad, what in (({**TUNED, "width_b": -3}, "width_b=-3"), ({**TUNED, "learning_rate": "fast"}, "learning_rate='fast'"),
                      ({k: v for k, v in TUNED.items() if k != "depth"}, "missing ['depth']"),
                      ({**TUNED, "dropout": 0.1}, "unknown ['dropout']")):
        path.write_text(json.dumps({"params": bad}))
        with pytest.raises(InputFileError, match=f"best_params.json.*{re.escape(what)}") as err:
            apply_tuned_params(_tc(), path)
        assert str(path) in str(err.value)
    path.write_text("{not json")
    with pytest.raises(InputFileError, match="unreadable"):
        apply_tuned_params(_tc(), path)
    missing = tmp_path / "nope" / "best_params.json"
    cfg = Config(train=_tc(tuned_params=str(missing), tracking_uri=f"sqlite:///{tmp_path}/m.db"))
    with pytest.raises(InputFileError, match="nope/best_params.json not found.*dislomob tune"):
        train_stage(cfg, tmp_path / "no_graphs", tmp_path / "model", tmp_path / "train.json", progress=False)
