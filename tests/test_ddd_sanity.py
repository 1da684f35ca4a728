"""Physics checks of a law through the DDD API (dislomob.ddd.sanity), on meshed networks and on real MD frames.

- The consistency checks give numbers on an untrained law, and its structural invariances hold (stress-sign
  reversal, exact reversal without internal stress, line sense, node spacing 0.5x..5x, the loop); a law that is
  even in the stress fails the reversal, so the check can fail.
- Networks made from MD frames (the committed benchmark MD, datasets/al_benchmark/md, cut to the first 1 ps so
  that one graph per run is featurized here) round-trip: the law's graph of the network has the frame graph's
  nodes, segments, frames and Gauss-point stress; the network carries the MD velocity y / dt.
- On those frames the direction metric is 1 for a law that moves nodes along the Peach-Koehler glide force
  (the phenomenological baseline law) and 0 for the same law reversed; the MD itself moves along it.
- Screw/edge ordering at 300 K / 0.5 GPa: the MD's edge line is faster than its screw line; a baseline law with
  edge faster agrees, one with screw faster does not.
Velocities in m/s, lengths in Angstrom, stress in GPa.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dislomob import graph_schema as S
from dislomob.config import Config
from dislomob.model.phenomenological import PhenomenologicalMobility
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network_graph import network_graph
from dislomob.ddd.sanity import (
    DIRECTION_TARGET, MDFrameNetwork, check_law, consistency_checks, line_character_deg, md_frame_networks, md_sanity,
    sanity_metrics, straight_dipole,
)
from dislomob.errors import InputFileError
from dislomob.features.featurize import _graph_meta, featurize_trajectory, read_trajectory_file
from dislomob.features.graphs import save_graphs
from ddd_helpers import untrained_law_file
from model_helpers import torch_one_thread  # noqa: F401 (autouse fixture)

ROOT = Path(__file__).resolve().parents[1]
MD_DIR = ROOT / "datasets" / "al_benchmark" / "md"
SCREW_300K_0P5 = "4389b9eddd9c2639"  # grid run: 300 K, 0.5 GPa, screw
EDGE_300K_0P5 = "b3ee41f93f7472a2"  # grid run: 300 K, 0.5 GPa, edge
CFG = Config()
FIRST_PS = 11  # frames 0 .. 1.0 ps: one graph at dt = 1 ps


@pytest.fixture(scope="module")
def law(tmp_path_factory) -> MobilityLaw:
    return MobilityLaw.from_path(untrained_law_file(tmp_path_factory.mktemp("law"), members=4, seed=0, cfg=CFG), CFG)


@pytest.fixture(scope="module")
def frame_files(tmp_path_factory) -> dict[str, Path]:
    """Graph files of the first ps of the screw and edge runs at 300 K / 0.5 GPa (featurized here)."""
    out = {}
    folder = tmp_path_factory.mktemp("graphs")
    for key in (SCREW_300K_0P5, EDGE_300K_0P5):
        path = MD_DIR / f"{key}.h5"
        traj = read_trajectory_file(path)
        traj = dataclasses.replace(traj, frames=traj.frames[:FIRST_PS])
        records = featurize_trajectory(traj, CFG, key).records
        assert len(records) == 1
        save_graphs(folder / f"{key}.pt", records, _graph_meta(CFG, path, traj))
        out[key] = folder / f"{key}.pt"
    return out


@pytest.fixture(scope="module")
def frame_networks(frame_files) -> list[MDFrameNetwork]:
    return [n for p in frame_files.values() for n in md_frame_networks(p, CFG)]


def baseline_law(sign: float = 1.0, edge_faster: bool = True) -> MobilityLaw:
    """The phenomenological law (v along the PK glide force of the node's stress, times ``sign``) with an
    athermal screw mobility of 4 A/ps/GPa (screws move well above the noise floor) and an edge mobility of
    ~10 A/ps/GPa at 300 K, or with ``edge_faster`` False ~0.05 A/ps/GPa."""
    model = PhenomenologicalMobility(sign)
    with torch.no_grad():
        model.log_screw_activation.fill_(-10.0)
        model.log_screw_mobility0.fill_(math.log(4.0))
        model.log_edge_drag0.fill_(math.log(0.05 if edge_faster else 20.0))
        model.log_edge_drag1.fill_(math.log(0.05))
    return MobilityLaw(model, CFG)


class EvenInStress(nn.Module):
    """A faulty law: the baseline's displacement with every component made positive (v(-tau) = v(tau))."""

    def __init__(self):
        super().__init__()
        self.inner = PhenomenologicalMobility()

    def forward(self, batch):
        return {"dx": self.inner(batch)["dx"].abs()}


def test_consistency_checks_on_an_untrained_law_give_numbers_and_the_invariances_hold(law: MobilityLaw) -> None:
    c = consistency_checks(law, CFG, temperatures_k=(300.0,), stresses_gpa=(0.5,))
    for name in ("reversal", "reversal_exact", "zero_stress", "line_sense", "spacing"):
        assert np.isfinite(c[name]["worst"]), name
    assert c["reversal"]["passed"] and c["reversal"]["pass_fraction"] == 1.0
    assert all(r["speed_m_per_s"] * r["reversed_m_per_s"] < 0 for r in c["reversal"]["cases"])
    assert c["reversal_exact"]["passed"] and c["line_sense"]["passed"] and c["loop"]["passed"]
    assert c["spacing"]["passed"], c["spacing"]["speeds_m_per_s"]
    speeds = np.array(list(c["spacing"]["speeds_m_per_s"].values()))
    assert speeds.shape == (3, 4) and np.all(np.abs(speeds) > 1.0)
    assert c["zero_stress"]["worst"] < 1.0  # an unloaded dipole moves less than a loaded one


@pytest.mark.slow
def test_a_law_even_in_the_stress_fails_the_reversal_check() -> None:
    c = consistency_checks(MobilityLaw(EvenInStress(), CFG), CFG, temperatures_k=(300.0,), stresses_gpa=(0.5,))
    assert not c["reversal"]["passed"] and c["reversal"]["pass_fraction"] == 0.0 and not c["passed"]


def test_straight_dipole_is_meshed_at_the_asked_spacing_with_the_asked_character() -> None:
    for spacing, angle in ((0.3, 0.0), (0.6, 35.26), (1.0, 125.3), (3.0, 90.0)):
        net = straight_dipole(CFG, angle, 0.5, 300.0, spacing)
        seg = np.linalg.norm(np.diff(net.positions_angstrom[: net.n_nodes // 2], axis=0), axis=1)
        assert np.allclose(seg, 10.0 * CFG.md.box.line_nm / (net.n_nodes // 2))
        assert abs(seg[0] - 10.0 * spacing) <= 0.5 * 10.0 * spacing or net.n_nodes == 6  # 3 nodes a line at least
        assert line_character_deg(net) == pytest.approx(angle, abs=1e-9)


def test_md_frame_network_round_trips_to_the_frame_graph(frame_files) -> None:
    from dislomob.features.graphs import read_graph_file

    for path in frame_files.values():
        data = read_graph_file(path)
        (rec,), (net,) = data["graphs"], md_frame_networks(path, CFG)
        ng = network_graph(net, CFG)
        g = ng.graph
        assert np.array_equal(ng.node_of, np.arange(net.n_nodes)) and not ng.flipped.any()
        assert torch.equal(g[S.NODE_SEG].edge_index, rec["edges"]["node__seg__node"])
        cell = net.cell_angstrom
        frac = (g[S.NODE].pos.numpy() - rec[S.NODE]["pos"].double().numpy()) @ np.linalg.inv(cell)
        assert np.allclose(frac, np.round(frac), atol=1e-6)  # the same nodes, up to whole cell vectors
        assert np.allclose(g[S.NODE].frame.numpy(), rec[S.NODE]["frame"].double().numpy(), atol=1e-6)
        # featurize keeps DXA's unwrapped lines where they are, the DDD path moves each line by whole periods into
        # the cell; the truncated sums (features.line_images periods + straight tails of the wavy MD lines) then
        # differ at the 1e-3 level (measured 0.4% at most on these frames)
        stress, want = g[S.GP].stress_gpa.numpy(), rec[S.GP]["stress_gpa"].double().numpy()
        assert np.abs(stress - want).max() <= 1e-2 * np.abs(want).max()
        assert np.allclose(g[S.GP].pos.numpy() - rec[S.GP]["pos"].double().numpy(),
                           np.repeat(g[S.NODE].pos.numpy() - rec[S.NODE]["pos"].double().numpy(), CFG.features.n_gauss,
                                     axis=0), atol=1e-3)
        assert np.array_equal(net.applied_stress_gpa, np.asarray(data["meta"]["trajectory"]["stress_tensor_gpa"]))
        y_cart = np.einsum("nji,nj->ni", rec[S.NODE]["frame"].double().numpy(), rec[S.NODE]["y"].double().numpy())
        assert np.allclose(net.md_velocity_m_per_s, y_cart * 100.0 / net.dt_ps)
        assert net.temperature_k == 300.0 and net.stress_gpa == pytest.approx(0.5)


@pytest.mark.slow
def test_networks_from_a_trajectory_file_equal_those_from_its_graph_file(tmp_path: Path) -> None:
    path = MD_DIR / f"{SCREW_300K_0P5}.h5"
    traj = read_trajectory_file(path)
    short = tmp_path / "short.h5"
    from dislomob.md.trajectory import write_trajectory

    write_trajectory(short, dataclasses.replace(traj, frames=traj.frames[:FIRST_PS]))
    from_h5 = md_frame_networks(short, CFG)
    save_graphs(tmp_path / "short.pt", featurize_trajectory(read_trajectory_file(short), CFG, "short").records,
                _graph_meta(CFG, short, read_trajectory_file(short)))
    from_pt = md_frame_networks(tmp_path / "short.pt", CFG)
    assert len(from_h5) == len(from_pt) == 1
    assert np.allclose(from_h5[0].positions_angstrom, from_pt[0].positions_angstrom, atol=1e-4)
    assert np.allclose(from_h5[0].md_velocity_m_per_s, from_pt[0].md_velocity_m_per_s, atol=1e-3)


def test_a_file_that_is_no_md_frame_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"net\.json: suffix '\.json' not allowed"):
        md_frame_networks(tmp_path / "net.json", CFG)
    (tmp_path / "junk.pt").write_bytes(b"not a graph file")
    with pytest.raises(InputFileError, match="junk.pt"):
        md_frame_networks(tmp_path / "junk.pt", CFG)


def test_direction_metric_is_one_along_the_pk_glide_force_and_zero_against_it(frame_networks) -> None:
    along = md_sanity(baseline_law(+1.0), frame_networks)["direction"]
    against = md_sanity(baseline_law(-1.0), frame_networks)["direction"]
    assert along["n_moving"] > 0.5 * along["n_nodes"]
    assert along["agree_fraction"] == 1.0 and along["passed"]
    assert against["agree_fraction"] == 0.0 and against["passed"] is False
    # the MD lines themselves move along the PK glide force of the stress the law sees
    assert along["md_agree_fraction"] >= DIRECTION_TARGET and along["md_n_moving"] > 0.5 * along["n_nodes"]
    # a threshold above every speed leaves no moving node: nothing to judge
    none = md_sanity(baseline_law(+1.0), frame_networks, moving_threshold_m_per_s=1e9)["direction"]
    assert none["n_moving"] == 0 and none["agree_fraction"] is None and none["passed"] is None


def test_screw_edge_ordering_follows_the_md_or_fails(frame_networks) -> None:
    good = md_sanity(baseline_law(edge_faster=True), frame_networks)["ordering"]
    runs = {r["traj_id"]: r for r in good["runs"]}
    assert runs[SCREW_300K_0P5]["character"] == "screw" and runs[EDGE_300K_0P5]["character"] == "edge"
    assert runs[EDGE_300K_0P5]["md_speed_m_per_s"] > 2 * runs[SCREW_300K_0P5]["md_speed_m_per_s"] > 0
    assert good["n_pairs"] == good["n_same_condition_pairs"] == 1
    assert good["pairs"][0]["md_edge_faster"] and good["passed"]
    bad = md_sanity(baseline_law(edge_faster=False), frame_networks)
    assert bad["ordering"]["pairs"][0]["law_edge_faster"] is False and bad["ordering"]["passed"] is False
    assert bad["direction"]["passed"] and bad["passed"] is False


@pytest.mark.slow
def test_check_law_combines_the_parts(law: MobilityLaw, frame_networks) -> None:
    out = check_law(law, CFG, frame_networks)
    assert set(out) == {"consistency", "md", "passed"}
    assert out["passed"] == bool(out["consistency"]["passed"] and out["md"]["passed"])
    assert out["consistency"]["line_sense"]["passed"] and out["consistency"]["spacing"]["passed"]
    metrics = sanity_metrics(out)
    assert metrics["sanity_passed"] == float(out["passed"]) and all(np.isfinite(list(metrics.values())))
    assert metrics["sanity_ordering_n_pairs"] == 1.0
