"""The evaluate stage's shear-loop evaluations (paper Fig. 5c-d): loop-trained on loops, dipole-trained on loops,
on analytic loop graphs (circular loops expanded one step by the test law) and a loop ensemble file with its split."""

from __future__ import annotations

import csv

import pytest
import torch
from model_helpers import loop_graph, torch_one_thread, write_model_dir  # noqa: F401
from test_evaluate_stage import _run, _setup

from dislomob.errors import InputFileError

LOOPS = {"lo0": (20.0, 1.5, 300.0), "lo1": (24.0, 2.0, 300.0), "lo2": (20.0, 2.0, 500.0), "lo3": (24.0, 1.5, 500.0),
         "lo4": (22.0, 1.75, 300.0), "lo5": (26.0, 2.25, 500.0)}
LOOP_SPLIT = {"train": ["lo0", "lo1", "lo2"], "val": ["lo3"], "test": ["lo4", "lo5"]}


def _loops(tmp_path, cfg, split=LOOP_SPLIT):
    from dislomob.evaluate.loops import LoopInputs

    graphs = {t: [loop_graph(r + 2.0 * k, s, temp, n=12, dt_ps=0.5, traj_id=t) for k in range(2)]
              for t, (r, s, temp) in LOOPS.items()}
    write_model_dir(graphs, split, tmp_path / "loop_graphs", tmp_path / "loop_train", seed=5)
    return LoopInputs(cfg, tmp_path / "loop_graphs", tmp_path / "loop_train")


@pytest.mark.slow  # the whole stage (~20 s)
def test_loop_evaluations_score_both_ensembles_on_the_same_held_out_loops(tmp_path) -> None:
    cfg, _ = _setup(tmp_path)
    m = _run(cfg, tmp_path, loops=_loops(tmp_path, cfg), track=False)
    s = m["single_step"]
    assert set(s) == {"dipole", "loop", "dipole_on_loops", "dipole_on_all_loops"}
    assert s["loop"]["trajectories"] == s["dipole_on_loops"]["trajectories"] == LOOP_SPLIT["test"]
    assert s["loop"]["n_graphs"] == s["dipole_on_loops"]["n_graphs"] == 4
    assert s["dipole_on_all_loops"]["trajectories"] == sorted(LOOPS) and s["dipole_on_all_loops"]["n_graphs"] == 12
    assert m["loops"]["loop_model"]["train_trajectories"] == LOOP_SPLIT["train"]
    # each fitted law is fitted on its own training set; the loops move by the test law, so the loop-fitted law
    # predicts the held-out loops' steps closely
    assert s["loop"]["error_pct"]["baseline"]["median"] < 30.0
    # the loops expand the same way in every frame: their per-character floor is far below a rigid floor's ~100%
    # (12 % here: 12-node polygons; 3.5 % with 24 nodes, tests/test_loop_floor.py)
    assert s["loop"]["floor_mean_law_pct"]["median"] < 20.0
    assert m["loops"]["loop_baseline_fit"] != m["baseline_fit"]
    # loops are loaded beyond the dipoles' stress bins (edges to 1 GPa): they get bins of their own
    stress_bins = s["dipole_on_all_loops"]["by_stress"]
    assert sum(b["n_graphs"] for b in stress_bins.values()) == 12
    assert all(b["n_graphs"] == 0 for k, b in stress_bins.items() if float(k.split("-")[1]) <= 1.4)
    assert max(float(k.split("-")[1]) for k, b in stress_bins.items()) > 2.25
    with open(tmp_path / "reports" / "errors_loop_graphs.csv") as fh:
        assert {r["traj_id"] for r in csv.DictReader(fh)} == set(LOOP_SPLIT["test"])
    for png in ("errors_loop.png", "errors_dipole_on_loops.png", "errors_dipole_on_all_loops.png"):
        assert (tmp_path / "reports" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loop_test_trajectories_must_have_graphs(tmp_path) -> None:
    from dislomob.evaluate.loops import loop_evaluations

    cfg, _ = _setup(tmp_path)
    inputs = _loops(tmp_path, cfg, {**LOOP_SPLIT, "test": ["lo4", "lo9"]})
    with pytest.raises(InputFileError, match=r"\['lo9'\] have no graphs"):
        loop_evaluations(inputs, torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    (tmp_path / "loop_train" / "split.json").unlink()
    with pytest.raises(InputFileError, match="split.json"):
        loop_evaluations(inputs, torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    (tmp_path / "loop_train" / "ensemble.pt").unlink()
    with pytest.raises(InputFileError, match="--no-loops"):
        loop_evaluations(inputs, torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
