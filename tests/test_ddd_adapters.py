"""The DDD adapters (dislomob.ddd.adapters) and `dislomob predict`, checked against the main API.

An untrained float64 ensemble saved with save_ensemble and loaded with ``MobilityLaw.from_path`` stands in for
the trained law. Each adapter must give the numbers ``MobilityLaw.velocities`` gives on the equivalent network
(to 1e-9), convert MoDELib's reduced units (stress / mu, lengths / |b|, velocity / cs) exactly, and refuse wrong
shapes and non-finite values with a message naming the argument and index.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dislomob import graph_schema as S
from dislomob.cli import main
from dislomob.config import Config, load_config
from dislomob.ddd.adapters import (
    POINT_LINE_NODES, AdapterInputError, ReducedUnits, ml_mobility, ml_mobility_network, point_network,
    shear_wave_speed_m_per_s, velocity_py,
)
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import DislocationNetwork, read_network
from dislomob.md.crystal import BURGERS, PLANE_NORMAL
from ddd_helpers import untrained_law_file
from model_helpers import torch_one_thread  # noqa: F401 (autouse fixture)

ROOT = Path(__file__).resolve().parents[1]
DIPOLE_FILE = ROOT / "examples" / "networks" / "dipole_fe.json"
LOOP_FILE = ROOT / "examples" / "networks" / "loop_fe.json"
CFG = Config()
A = CFG.material.lattice_a_angstrom
B_VEC = BURGERS * A
B_LEN = float(np.linalg.norm(B_VEC))
N_HAT = PLANE_NORMAL / np.linalg.norm(PLANE_NORMAL)
MU_GPA = CFG.material.shear_modulus_gpa
CS = shear_wave_speed_m_per_s(MU_GPA, 7874.0)
UNITS = ReducedUnits(B_LEN, MU_GPA, CS)


@pytest.fixture(scope="module")
def law_file(tmp_path_factory) -> Path:
    return untrained_law_file(tmp_path_factory.mktemp("law"), members=3, seed=1, cfg=CFG)


@pytest.fixture(scope="module")
def law(law_file: Path) -> MobilityLaw:
    return MobilityLaw.from_path(law_file)


def assert_close(a: np.ndarray, b: np.ndarray, rel: float = 1e-9) -> None:
    scale = float(np.abs(b).max())
    assert scale > 0
    assert float(np.abs(np.asarray(a) - b).max()) <= rel * scale, float(np.abs(np.asarray(a) - b).max()) / scale


def with_law_quadrature(law: MobilityLaw, net: DislocationNetwork) -> DislocationNetwork:
    """``net`` carrying, as quadrature stress, the stress the law computes itself at its Gauss points (GPa)."""
    ng = law.graph(net)
    gp = ng.graph[S.GP]
    return dataclasses.replace(net, quad_positions_angstrom=gp.pos.numpy(),
                               quad_segments=ng.segment_of[gp.segment.numpy()], quad_stress_gpa=gp.stress_gpa.numpy())


def modelib_layout(net: DislocationNetwork, order: np.ndarray | None = None) -> dict:
    """MLmobility's arguments for a network with quadrature stress: nodes then quadrature points in one list (or
    permuted by ``order``: new point ``order[i]`` = old point i), zero stress rows at nodes, one cell per segment."""
    n = net.n_nodes
    pos = np.vstack([net.positions_angstrom, net.quad_positions_angstrom])
    stress = np.concatenate([np.zeros((n, 3, 3)), net.quad_stress_gpa])
    cells = [[int(net.segments[k, 0]), *(n + np.flatnonzero(net.quad_segments == k)).tolist(), int(net.segments[k, 1])]
             for k in range(net.n_segments)]
    if order is not None:
        pos_new, stress_new = np.empty_like(pos), np.empty_like(stress)
        pos_new[order], stress_new[order] = pos, stress
        pos, stress, cells = pos_new, stress_new, [[int(order[i]) for i in c] for c in cells]
    return {"pos": pos, "stress": stress, "burgers": np.array(net.burgers_angstrom), "cells": cells,
            "T": net.temperature_k}


# ------------------------------------------------------------------------------------------- ml_mobility


@pytest.mark.parametrize("case", ["dipole", "loop"])
def test_ml_mobility_gives_the_main_apis_velocities(law: MobilityLaw, case: str) -> None:
    net = with_law_quadrature(law, read_network(DIPOLE_FILE if case == "dipole" else LOOP_FILE))
    v, sigma = law.velocities(net)
    args = modelib_layout(net)
    got_v, got_sigma = ml_mobility(law, **args, normals=net.normals, cell=net.cell_angstrom, return_sigma=True)
    assert got_v.shape == (net.n_nodes, 3) and got_sigma.shape == (net.n_nodes,)
    assert_close(got_v, v)
    assert_close(got_sigma, sigma)
    flat = dict(args, stress=args["stress"].reshape(-1, 9))
    assert_close(ml_mobility(law, **flat, normals=net.normals, cell=net.cell_angstrom), v)


def test_ml_mobility_rows_follow_the_node_points_in_index_order(law: MobilityLaw) -> None:
    net = with_law_quadrature(law, read_network(DIPOLE_FILE))
    n_points = net.n_nodes + len(net.quad_segments)
    order = np.random.default_rng(3).permutation(n_points)
    args = modelib_layout(net, order)
    built, node_points = ml_mobility_network(**args, normals=net.normals, cell=net.cell_angstrom)
    assert np.array_equal(node_points, np.sort(order[: net.n_nodes]))
    got = ml_mobility(law, **args, normals=net.normals, cell=net.cell_angstrom)
    v = law.velocities(net)[0]
    rank = np.argsort(np.argsort(order[: net.n_nodes]))  # old node i is row rank[i]
    assert_close(got[rank], v)
    assert_close(law.velocities(built)[0], got)


def test_ml_mobility_reduced_units_convert_to_angstrom_gpa_and_cs(law: MobilityLaw) -> None:
    net = with_law_quadrature(law, read_network(DIPOLE_FILE))
    args = modelib_layout(net)
    v, sigma = law.velocities(net)
    reduced = dict(args, pos=args["pos"] / B_LEN, stress=args["stress"] / MU_GPA, burgers=args["burgers"] / B_LEN)
    built, _ = ml_mobility_network(**reduced, normals=net.normals, cell=net.cell_angstrom / B_LEN, reduced=UNITS)
    assert np.allclose(built.positions_angstrom, net.positions_angstrom, rtol=1e-12, atol=1e-12)
    assert np.allclose(built.burgers_angstrom, net.burgers_angstrom, rtol=1e-12, atol=1e-12)
    assert np.allclose(built.quad_stress_gpa, net.quad_stress_gpa, rtol=1e-12, atol=1e-15)  # S/mu x mu = GPa
    got_v, got_sigma = ml_mobility(law, **reduced, normals=net.normals, cell=net.cell_angstrom / B_LEN, reduced=UNITS,
                                   return_sigma=True)
    assert_close(got_v * CS, v)  # units of cs x cs = m/s
    assert_close(got_sigma * CS, sigma)


def test_ml_mobility_default_normals_are_b_cross_xi_and_screw_segments_need_them(law: MobilityLaw) -> None:
    net = with_law_quadrature(law, read_network(DIPOLE_FILE))  # 90 deg (edge) lines
    built, _ = ml_mobility_network(**modelib_layout(net), cell=net.cell_angstrom)
    assert np.allclose(np.abs(np.einsum("ij,ij->i", built.normals, net.normals)), 1.0, atol=1e-9)
    screw = point_network(resolved_shear(0.5) / MU_GPA, B_VEC / B_LEN, B_VEC, N_HAT, 300.0, 10.0, UNITS)
    with pytest.raises(AdapterInputError, match=r"segment 0 \(cells\[0\]\) is \(near\) screw.*pass normals"):
        ml_mobility_network(**modelib_layout(screw), cell=screw.cell_angstrom)
    assert_close(ml_mobility(law, **modelib_layout(screw), normals=N_HAT, cell=screw.cell_angstrom),
                 law.velocities(screw)[0])


def test_ml_mobility_names_bad_shapes_and_values(law: MobilityLaw) -> None:
    net = with_law_quadrature(law, read_network(LOOP_FILE))
    good = modelib_layout(net)
    n = net.n_nodes

    def fails(match: str, **change) -> None:
        with pytest.raises(AdapterInputError, match=match):
            ml_mobility(law, **dict(good, **change), normals=net.normals)

    fails(r"pos has shape \(\d+, 2\): expected \(any, 3\)", pos=good["pos"][:, :2])
    bad_pos = good["pos"].copy()
    bad_pos[4, 1] = np.nan
    fails(r"pos\[4, 1\] = nan: values must be finite", pos=bad_pos)
    bad_stress = good["stress"].copy()
    bad_stress[n + 2, 0, 2] = np.inf
    fails(rf"stress\[{n + 2}, 0, 2\] = inf", stress=bad_stress)
    fails(r"stress has shape \(\d+, 3, 2\)", stress=good["stress"][:, :, :2])
    fails(r"burgers has shape \(\d+, 3\): expected \(\d+, 3\) \(one Burgers vector per segment",
          burgers=good["burgers"][:-1])
    fails(r"T = nan: allowed a finite value >= 0", T=float("nan"))
    fails(r"T = -5.0", T=-5.0)
    cells = [list(c) for c in good["cells"]]
    cells[2] = [cells[2][0], 10_000, cells[2][-1]]
    fails(r"cells\[2\]\[1\] = 10000: point indices must be integers", cells=cells)
    fails(r"cells\[0\] = \[\d+, \d+\]: expected \[start node, at least one quadrature point, end node\]",
          cells=[[c[0], c[-1]] for c in good["cells"]])
    extra = dict(good, pos=np.vstack([good["pos"], np.ones(3)]),
                 stress=np.concatenate([good["stress"], np.zeros((1, 3, 3))]))
    fails(rf"point {len(good['pos'])} of pos is in no cell", **extra)
    with pytest.raises(AdapterInputError, match=r"normals has shape \(2, 3\)"):
        ml_mobility(law, **good, normals=net.normals[:2])
    with pytest.raises(AdapterInputError, match=r"b_angstrom = 0.0: allowed a finite value > 0"):
        ReducedUnits(0.0, MU_GPA, CS)


# ------------------------------------------------------------------------------------------- velocity_py


def glide_speed(law: MobilityLaw, net: DislocationNetwork, n_hat: np.ndarray) -> tuple[float, float]:
    """(norm of the glide part of the mean nodal velocity, mean sigma) in m/s from the main API."""
    v, sigma = law.velocities(net)
    mean = v.mean(axis=0)
    return float(np.linalg.norm(mean - (mean @ n_hat) * n_hat)), float(sigma.mean())


def straight_line(s_gpa: np.ndarray, b_angstrom: np.ndarray, xi: np.ndarray, dl_angstrom: float, origin: np.ndarray,
                  width: float) -> DislocationNetwork:
    """A straight periodic line through ``origin`` built here independently: POINT_LINE_NODES nodes ``dl_angstrom``
    apart along ``xi``, quadrature points at 0.3 of each segment carrying the uniform stress ``s_gpa``."""
    t = xi / np.linalg.norm(xi)
    k = np.arange(POINT_LINE_NODES)
    pos = origin + np.outer(k * dl_angstrom, t)
    cell = np.stack([width * np.cross(N_HAT, t), POINT_LINE_NODES * dl_angstrom * t, width * N_HAT])
    return DislocationNetwork(positions_angstrom=pos, segments=np.stack([k, (k + 1) % POINT_LINE_NODES], 1),
                              burgers_angstrom=np.tile(b_angstrom, (POINT_LINE_NODES, 1)),
                              normals=np.tile(N_HAT, (POINT_LINE_NODES, 1)), temperature_k=500.0,
                              applied_stress_gpa=np.zeros((3, 3)), cell_angstrom=cell,
                              quad_positions_angstrom=pos + 0.3 * dl_angstrom * t, quad_segments=k,
                              quad_stress_gpa=np.repeat(s_gpa[None], POINT_LINE_NODES, 0))


def character_direction(angle_deg: float) -> np.ndarray:
    b_hat = B_VEC / B_LEN
    th = math.radians(angle_deg)
    return math.cos(th) * b_hat + math.sin(th) * np.cross(N_HAT, b_hat)


def resolved_shear(tau_gpa: float) -> np.ndarray:
    b_hat = B_VEC / B_LEN
    return tau_gpa * (np.outer(b_hat, N_HAT) + np.outer(N_HAT, b_hat))


@pytest.mark.parametrize("angle", [0.0, 54.7, 90.0])
def test_velocity_py_gives_the_main_apis_glide_speed(law: MobilityLaw, angle: float) -> None:
    xi = character_direction(angle)
    s_gpa = resolved_shear(0.4) + 0.1 * np.eye(3)
    dl = 12.0  # |b|
    speed, sigma = velocity_py(law, s_gpa / MU_GPA, B_VEC / B_LEN, 3.0 * xi, 2.0 * N_HAT, 500.0, dl, 0.7, MU_GPA, B_LEN,
                               CS, return_sigma=True)
    want, want_sigma = glide_speed(law, straight_line(s_gpa, B_VEC, xi, dl * B_LEN, np.array([5.0, -3.0, 7.0]), 400.0),
                                   N_HAT)
    assert want > 1.0 and speed >= 0
    assert speed == pytest.approx(want / CS, rel=1e-9)
    assert sigma == pytest.approx(want_sigma / CS, rel=1e-9)
    again = velocity_py(law, s_gpa / MU_GPA, B_VEC / B_LEN, xi, N_HAT, 500.0, dl, 0.0, MU_GPA, B_LEN, CS)
    assert again == pytest.approx(speed, rel=1e-12)  # dt and the lengths of xi and n do not matter


def test_point_network_converts_reduced_units() -> None:
    s = resolved_shear(0.3) / MU_GPA
    xi = character_direction(35.3)
    net = point_network(s, B_VEC / B_LEN, xi, N_HAT, 300.0, 8.0, UNITS)
    assert net.n_nodes == POINT_LINE_NODES and net.has_quadrature_stress
    seg = net.positions_angstrom[net.segments[:, 1]] - net.positions_angstrom[net.segments[:, 0]]
    assert np.allclose(np.linalg.norm(seg[:-1], axis=1), 8.0 * B_LEN, rtol=1e-12)  # dL x |b| = Angstrom
    assert np.allclose(net.burgers_angstrom, B_VEC, rtol=1e-12)  # b (units of |b|) x |b| = Angstrom
    assert np.allclose(net.quad_stress_gpa, resolved_shear(0.3)[None], rtol=1e-12, atol=1e-15)  # S x mu = GPa
    assert np.allclose(net.applied_stress_gpa, resolved_shear(0.3), rtol=1e-12, atol=1e-15)
    assert np.allclose(net.cell_angstrom[1], POINT_LINE_NODES * 8.0 * B_LEN * xi / np.linalg.norm(xi), rtol=1e-12)
    assert shear_wave_speed_m_per_s(82.0, 7874.0) == pytest.approx(math.sqrt(82e9 / 7874.0), rel=1e-15)
    assert 3200.0 < shear_wave_speed_m_per_s(82.0, 7874.0) < 3260.0  # Fe: ~3.23 km/s


def test_velocity_py_units_rescale_consistently(law: MobilityLaw) -> None:
    s_gpa, xi = resolved_shear(0.5), character_direction(70.5)
    ref = velocity_py(law, s_gpa / MU_GPA, B_VEC / B_LEN, xi, N_HAT, 300.0, 10.0, 1.0, MU_GPA, B_LEN, CS)
    # the same GPa with another mu, the same Angstrom with another |b|: the same speed; cs only scales it
    assert velocity_py(law, 2.0 * s_gpa / MU_GPA, B_VEC / B_LEN, xi, N_HAT, 300.0, 10.0, 1.0, MU_GPA / 2.0, B_LEN,
                       CS) == pytest.approx(ref, rel=1e-9)
    assert velocity_py(law, s_gpa / MU_GPA, B_VEC / B_LEN / 2.0, xi, N_HAT, 300.0, 20.0, 1.0, MU_GPA, 2.0 * B_LEN,
                       CS) == pytest.approx(ref, rel=1e-9)
    assert velocity_py(law, s_gpa / MU_GPA, B_VEC / B_LEN, xi, N_HAT, 300.0, 10.0, 1.0, MU_GPA, B_LEN,
                       2.0 * CS) == pytest.approx(ref / 2.0, rel=1e-12)


def test_velocity_py_names_bad_shapes_and_values(law: MobilityLaw) -> None:
    s, b, xi = resolved_shear(0.5) / MU_GPA, B_VEC / B_LEN, character_direction(90.0)
    good = {"S": s, "b": b, "xi": xi, "n": N_HAT, "T": 300.0, "dL": 10.0, "dt": 1.0, "mu_gpa": MU_GPA,
            "b_angstrom": B_LEN, "cs_m_per_s": CS}
    cases = [
        ({"S": s[0]}, r"S has shape \(3,\): expected \(3, 3\)"),
        ({"S": np.where(np.eye(3) > 0, np.nan, s)}, r"S\[0, 0\] = nan: values must be finite"),
        ({"b": [1.0, 2.0]}, r"b has shape \(2,\): expected \(3,\)"),
        ({"b": [np.inf, 0.0, 0.0]}, r"b\[0\] = inf"),
        ({"xi": np.zeros(3)}, r"xi = \[0.0, 0.0, 0.0\] has zero length"),
        ({"b": N_HAT}, r"b = .* is not in the slip plane n = "),
        ({"xi": N_HAT}, r"xi = .* is not in the slip plane n = "),
        ({"T": float("nan")}, r"T = nan: allowed a finite value >= 0"),
        ({"dL": 0.0}, r"dL = 0.0: allowed a finite value > 0"),
        ({"dt": float("inf")}, r"dt = inf: allowed a finite value >= 0"),
        ({"mu_gpa": -1.0}, r"mu_gpa = -1.0: allowed a finite value > 0"),
        ({"cs_m_per_s": float("nan")}, r"cs_m_per_s = nan"),
    ]
    for change, match in cases:
        with pytest.raises(AdapterInputError, match=match):
            velocity_py(law, **dict(good, **change))


# ------------------------------------------------------------------------------------------- dislomob predict


def test_predict_prints_the_laws_velocities_as_a_table_and_json(law_file: Path, capsys) -> None:
    params = ROOT / "params.yaml"
    v, sigma = MobilityLaw.from_path(law_file, load_config(params)).velocities(read_network(DIPOLE_FILE))
    assert main(["--params", str(params), "predict", "--model", str(law_file), str(DIPOLE_FILE), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["units"] == {"velocity": "m/s", "sigma": "m/s"} and out["n_nodes"] == 16
    assert_close(np.array(out["velocity_m_per_s"]), v, 1e-12)
    assert_close(np.array(out["sigma_m_per_s"]), sigma, 1e-12)
    assert main(["--params", str(params), "predict", "--model", str(law_file), str(DIPOLE_FILE)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "16 nodes" in lines[0] and "sigma (m/s)" in lines[1] and len(lines) == 18
    row = lines[2 + 5].split()
    assert int(row[0]) == 5
    assert np.allclose([float(x) for x in row[1:]], [*v[5], sigma[5]], rtol=1e-5)


def test_predict_refuses_missing_files_and_registry_uris(law_file: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing.pt"
    assert main(["predict", "--model", str(missing), str(DIPOLE_FILE)]) == 2
    assert f"model file {missing} not found" in capsys.readouterr().err
    absent = tmp_path / "nothing.json"
    assert main(["predict", "--model", str(law_file), str(absent)]) == 2
    assert f"network file {absent} not found" in capsys.readouterr().err
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["predict", "--model", "models:/dislomob@champion", "--registry-uri", empty, str(DIPOLE_FILE)]) == 2
    assert f"models:/dislomob@champion not found in the registry {empty}: no registered model 'dislomob'" \
        in capsys.readouterr().err
    assert main(["predict", "--model", "models:/dislomob", str(DIPOLE_FILE)]) == 2
    assert "model URI 'models:/dislomob' not understood" in capsys.readouterr().err
