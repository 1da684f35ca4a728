"""Training: split by trajectory, Lightning ensemble training on analytic trajectories, divergence stop,
the train stage end to end with graph files, MLflow (sqlite in tmp_path) and the metrics JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dislomob.config import Config, ConfigError, TrainConfig, parse_config
from dislomob.model.ensemble import load_ensemble
from dislomob.train.data import GraphDataModule, split_by_trajectory
from dislomob.train.module import TrainingDiverged
from dislomob.model.ensemble import save_ensemble
from dislomob.train.stage import build_model, train_ensemble, train_stage
from model_helpers import graph_record, straight_graph, torch_one_thread, trajectory_graphs  # noqa: F401

ANGLES = (0.0, 20.0, 45.0, 70.0, 90.0, 110.0, 135.0, 160.0, 180.0, 90.0)


def _dataset(n_frames: int = 3) -> list:
    graphs = []
    for i, a in enumerate(ANGLES):
        tau = 0.3 + 0.2 * (i % 2)  # screw-like and edge-like lines share three (stress, T) conditions
        temp = 300.0 + 200.0 * ((i // 2) % 2)
        graphs += trajectory_graphs(f"traj{i:02d}", a, tau, temp, n_frames=n_frames)
    return graphs


def _tc(**kw) -> TrainConfig:
    base = dict(members=4, width=8, depth=2, epochs=12, batch_size=8, learning_rate=1e-2, baseline_steps=150,
                threads=1, tuned_params=None)
    base.update(kw)
    return TrainConfig(**base)


def test_split_by_trajectory_is_seeded_disjoint_and_sized() -> None:
    ids = [f"t{i}" for i in range(10)]
    a = split_by_trajectory(ids * 3, (0.7, 0.2, 0.1), seed=1)
    assert a == split_by_trajectory(ids, (0.7, 0.2, 0.1), seed=1)
    assert [len(a[k]) for k in ("train", "test", "val")] == [7, 2, 1]
    assert sorted(a["train"] + a["test"] + a["val"]) == sorted(ids)
    assert a != split_by_trajectory(ids, (0.7, 0.2, 0.1), seed=2)
    with pytest.raises(ValueError, match="needs >= 3 trajectories"):
        split_by_trajectory(["a", "b"], (0.7, 0.2, 0.1), seed=0)
    dm = GraphDataModule(_dataset(2), (0.7, 0.2, 0.1), batch_size=4, seed=3)
    for name, ids_ in dm.parts.items():
        assert {str(g.traj_id) for g in dm.sets[name]} == set(ids_)


def test_split_is_stratified_by_character_bucket() -> None:
    from dislomob.train.buckets import bucket_of

    ids = [f"t{i:02d}" for i in range(12)]
    groups = {t: bucket_of(a) for t, a in zip(ids, (0.0, 35.3, 90.0) * 4)}
    for seed in range(6):
        parts = split_by_trajectory(ids, (0.7, 0.2, 0.1), seed, groups)
        assert sorted(groups[t] for t in parts["test"]) == ["edge_like", "mixed", "screw_like"]
        assert len(parts["val"]) == 1 and len(parts["train"]) == 8
        assert {groups[t] for t in parts["train"]} == {"edge_like", "mixed", "screw_like"}
    # a bucket with two trajectories keeps one for training; one with a single trajectory stays in training
    small = {"a": "screw_like", "b": "screw_like", "c": "edge_like", **{f"m{i}": "mixed" for i in range(6)}}
    parts = split_by_trajectory(list(small), (0.7, 0.2, 0.1), 0, small)
    assert "c" in parts["train"] and ({"a", "b"} & set(parts["train"]))
    dm = GraphDataModule(_dataset(2), (0.7, 0.2, 0.1), batch_size=4, seed=3)
    test_buckets = {bucket_of(float(g.angle_deg)) for g in dm.sets["test"]}
    assert test_buckets == {"edge_like", "screw_like"}  # ANGLES: 4 screw-like, 4 edge-like, 2 mixed


def test_train_config_rejects_bad_split() -> None:
    with pytest.raises(ConfigError, match="train.split"):
        parse_config({"train": {"split": [0.5, 0.5, 0.5]}})
    assert Config().train.members == 20


def test_warm_start_takes_previous_weights_and_scales(tmp_path) -> None:
    graphs = _dataset(2)
    first = build_model(_tc(), seed=0, train_graphs=graphs)
    save_ensemble(first, tmp_path / "prev.pt")
    fresh = build_model(_tc(), seed=5, train_graphs=graphs[:3])
    warm = build_model(_tc(warm_start=str(tmp_path / "prev.pt")), seed=5, train_graphs=graphs[:3])
    with torch.no_grad():
        assert torch.equal(warm(graphs[0])["dx"], first(graphs[0])["dx"])
        assert not torch.allclose(fresh(graphs[0])["dx"], first(graphs[0])["dx"])
    assert torch.equal(warm.node_std, first.node_std)


@pytest.mark.slow
def test_ensemble_learns_the_law_and_screw_is_slower(tmp_path) -> None:
    res = train_ensemble(_dataset(), _tc(epochs=25, restore_best_epoch=True), seed=0, model_dir=tmp_path, progress=False)
    first, last = res.history[0]["train"], res.history[-1]["train"]
    assert np.mean(last) < 0.5 * np.mean(first)
    assert int(res.model.active.sum()) == 2
    val = torch.tensor(res.val_loss)
    assert float(val[res.model.active].max()) <= float(val[~res.model.active].min())
    means = [float(np.mean(h["val"])) for h in res.history]
    assert res.best_epoch == int(np.argmin(means)) and res.val_loss == res.history[res.best_epoch]["val"]
    assert (tmp_path / "last_good.pt").is_file()
    model = res.model
    with torch.no_grad():
        speed = {}
        for a in (0.0, 90.0):
            g = straight_graph(a, 0.5, 400.0, n=6)
            dx = model(g)["dx"][model.active].mean(0)
            speed[a] = float(dx.norm(dim=-1).mean())
    assert speed[0.0] < 0.6 * speed[90.0]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path) -> None:
    graphs = _dataset(2)
    train_ensemble(graphs, _tc(epochs=2), seed=0, model_dir=tmp_path, progress=False)
    ckpt = tmp_path / "last_good.pt"
    before = ckpt.read_bytes()
    for g in graphs:
        g["target"].pos[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"epoch 0: non-finite loss .*last good checkpoint kept at .*last_good.pt"):
        train_ensemble(graphs, _tc(epochs=2), seed=0, model_dir=tmp_path, progress=False)
    assert ckpt.read_bytes() == before
    model, extra = load_ensemble(ckpt)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert extra["epoch"] == 1


@pytest.mark.slow
def test_train_stage_end_to_end(tmp_path) -> None:
    from dislomob.features.graphs import save_graphs

    graphs_dir = tmp_path / "graphs"
    graphs = _dataset()
    for tid in sorted({str(g.traj_id) for g in graphs}):
        save_graphs(graphs_dir / f"{tid}.pt", [graph_record(g) for g in graphs if str(g.traj_id) == tid], {"traj": tid})
    uri = f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    cfg = Config(train=_tc(tracking_uri=uri, experiment="test-train"))
    metrics = train_stage(cfg, graphs_dir, tmp_path / "model", tmp_path / "metrics" / "train.json", progress=False)
    on_disk = json.loads((tmp_path / "metrics" / "train.json").read_text())
    assert on_disk == pytest.approx(metrics)
    for key in ("test_error_median", "baseline_test_error_median", "uncertainty_rel", "test_error_median_screw_like",
                "test_error_median_mixed", "test_error_median_edge_like", "baseline_test_error_median_edge_like"):
        assert key in on_disk
    assert 0 < on_disk["test_error_median"] < 1.0
    for key in ("test_error_median", "baseline_test_error_median"):
        assert on_disk[f"{key}_ci_low"] <= on_disk[key] <= on_disk[f"{key}_ci_high"]
    # the trained law's physics checks are recorded; those that hold by construction pass
    assert on_disk["consistency_reversal_pass_fraction"] == 1.0 and on_disk["consistency_zero_stress_pass_fraction"] == 1.0
    assert on_disk["consistency_spacing_pass_fraction"] == 1.0 and on_disk["consistency_line_sense_worst"] < 1e-5
    assert on_disk["baseline_consistency_reversal_pass_fraction"] == 1.0 and on_disk["consistency_spread_ratio"] > 0
    assert on_disk["uncertainty_rel"] > 0
    assert on_disk["members_selected"] == 2
    # the test law: screw mobility 1.5 vs edge 8; compared at equal stress and T
    assert on_disk["n_conditions_screw_vs_edge"] >= 2
    assert on_disk["speed_ratio_screw_to_edge"] < 0.8
    model, extra = load_ensemble(tmp_path / "model" / "ensemble.pt")
    assert int(model.active.sum()) == 2 and len(extra["val_loss"]) == 4

    import mlflow

    mlflow.set_tracking_uri(uri)
    run_id = json.loads((tmp_path / "model" / "run.json").read_text())["mlflow_run_id"]
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    assert run.data.params["train.members"] == "4"
    assert run.data.metrics["test_error_median"] == pytest.approx(on_disk["test_error_median"])
    hist = client.get_metric_history(run_id, "val_loss")
    assert [h.step for h in hist] == list(range(12))
    assert len(client.get_metric_history(run_id, "train_loss_m03")) == 12
    arts = {a.path for a in client.list_artifacts(run_id, "model")}
    assert {"model/ensemble.pt", "model/baseline.json", "model/split.json"} <= arts
    assert (tmp_path / "mlflow" / "artifacts").is_dir()
