"""The exported mobility law (dislomob.export) against the Python law (dislomob.ddd.law.MobilityLaw).

- The pure-torch module loads the ensemble's state dict as is and gives the PyG law's velocities and sigma
  (float64, 1e-6 relative) on a periodic dipole, a rotated one, an open loop, a network stored against its
  walk (segments reversed, nodes renumbered, one pinned node) and one with the DDD code's quadrature stress
  at its own points; export_inputs keeps the law's errors (a junction is refused, naming the node).
- Slow (one AOTInductor compile, ~1.5 min on 2 cores): the .pt2 package in Python equals the law on a rotated
  network with quadrature stress and on a loop of another size (dynamic shapes), and the C++ example built
  with g++ against the wheel's libtorch prints the law's velocities for examples/networks/dipole_fe.json to
  1e-5 m/s.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from dislomob.config import Config
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import NODE_PINNED, DislocationNetwork, read_network, segment_vectors
from dislomob.ddd.network_graph import UnsupportedNetworkError
from dislomob.errors import InputFileError
from dislomob.export.contract import export_inputs
from dislomob.export.cpp_check import compare_with_python
from dislomob.export.package import export_law, export_module, load_package
from dislomob.export.textio import input_text, parse_output
from dislomob.model.ensemble import load_ensemble, save_ensemble
from ddd_helpers import DIPOLE_FILE, rotated, untrained_law_file
from model_helpers import random_rotation, torch_one_thread  # noqa: F401 (autouse fixture)

LOOP_FILE = Path(__file__).resolve().parents[1] / "examples" / "networks" / "loop_fe.json"
CFG = Config()
REL_TOL = 1e-6


@pytest.fixture(scope="module")
def law_file(tmp_path_factory) -> Path:
    return untrained_law_file(tmp_path_factory.mktemp("law"), members=4, seed=3, cfg=CFG)


@pytest.fixture(scope="module")
def law(law_file: Path) -> MobilityLaw:
    return MobilityLaw.from_path(law_file, CFG)


def with_quadrature(net: DislocationNetwork, seed: int) -> DislocationNetwork:
    """``net`` with 1 to 3 quadrature points per segment at random u, shuffled, carrying a smooth stress (GPa)."""
    rng = np.random.default_rng(seed)
    seg = np.repeat(np.arange(net.n_segments), rng.integers(1, 4, size=net.n_segments))
    u = rng.uniform(0.05, 0.95, size=len(seg))
    pos = net.positions_angstrom[net.segments[seg, 0]] + u[:, None] * segment_vectors(net)[seg]
    grad = rng.normal(scale=0.01, size=(3, 3, 3))
    field = rng.normal(scale=0.2, size=(3, 3))[None] + np.einsum("ijk,qk->qij", grad, pos - pos.mean(axis=0))
    stress = 0.5 * (field + np.swapaxes(field, 1, 2)) + net.applied_stress_gpa[None]
    order = rng.permutation(len(seg))
    return dataclasses.replace(net, quad_positions_angstrom=pos[order], quad_segments=seg[order],
                               quad_stress_gpa=stress[order])


def against_the_walk(net: DislocationNetwork, seed: int) -> DislocationNetwork:
    """``net`` with every other segment stored reversed as (-xi, -b), nodes renumbered, node 0 pinned."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(net.n_nodes)  # old node i -> new node perm[i]
    seg = perm[net.segments].copy()
    b = net.burgers_angstrom.copy()
    flip = np.arange(net.n_segments) % 2 == 1
    seg[flip] = seg[flip][:, ::-1]
    b[flip] = -b[flip]
    pos = np.empty_like(net.positions_angstrom)
    pos[perm] = net.positions_angstrom
    flags = np.zeros(net.n_nodes, dtype=np.int64)
    flags[0] = NODE_PINNED
    return dataclasses.replace(net, positions_angstrom=pos, segments=seg, burgers_angstrom=b, node_flags=flags)


def exported_velocities(fn, net: DislocationNetwork) -> tuple[np.ndarray, np.ndarray]:
    """(velocity, sigma) m/s in network node order from a callable on the contract tensors."""
    inputs = export_inputs(net, CFG)
    with torch.no_grad():
        v, s = fn(*inputs.tensors())
    return inputs.to_network_order(v.numpy()), inputs.to_network_order(s.numpy())


def assert_same(actual: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray], rel: float) -> None:
    """Velocities and sigma agree to ``rel`` of the largest speed (m/s)."""
    scale = float(np.abs(expected[0]).max())
    assert scale > 1.0  # the law moves the lines: a zero answer would pass trivially
    np.testing.assert_allclose(actual[0], expected[0], rtol=0, atol=rel * scale)
    np.testing.assert_allclose(actual[1], expected[1], rtol=0, atol=rel * scale)


def networks() -> dict[str, DislocationNetwork]:
    dipole, loop = read_network(DIPOLE_FILE), read_network(LOOP_FILE)
    return {"dipole": dipole, "rotated dipole": rotated(dipole, random_rotation(5)), "loop": loop,
            "against the walk": against_the_walk(dipole, 1),
            "quadrature, rotated": rotated(with_quadrature(against_the_walk(dipole, 2), 3), random_rotation(6)),
            "loop with quadrature": with_quadrature(loop, 4)}


@pytest.mark.parametrize("case", list(networks()))
def test_pure_torch_module_equals_the_pyg_law(law: MobilityLaw, law_file: Path, case: str) -> None:
    net = networks()[case]
    module = export_module(law_file, CFG)
    assert_same(exported_velocities(module, net), law.velocities(net), REL_TOL)
    if net.node_flags is not None:
        v, s = exported_velocities(module, net)
        assert np.all(v[net.node_flags == NODE_PINNED] == 0) and np.all(s[net.node_flags == NODE_PINNED] == 0)


def test_pure_torch_module_equals_the_law_with_per_net_widths(tmp_path: Path) -> None:
    """A tuned law (F-, B-, E-nets of their own widths, one trunk each) exports the same velocities."""
    path = untrained_law_file(tmp_path, members=4, seed=5, cfg=CFG, widths=(7, 4, 3))
    per_net = MobilityLaw.from_path(path, CFG)
    assert per_net.model.trunks is not None
    for case in ("dipole", "loop with quadrature"):
        net = networks()[case]
        assert_same(exported_velocities(export_module(path, CFG), net), per_net.velocities(net), REL_TOL)


@pytest.mark.parametrize("widths", [None, (7, 4, 3)])
def test_the_export_computes_the_active_members_only_and_still_equals_the_law(tmp_path: Path, widths) -> None:
    """Members 1, 2 and 4 of 5 inactive (as select_top leaves them): the export keeps members 0 and 3 only."""
    path = untrained_law_file(tmp_path, members=5, seed=7, cfg=CFG, widths=widths)
    model, extra = load_ensemble(path)
    model.active.copy_(torch.tensor([True, False, False, True, False]))
    save_ensemble(model, path, extra)
    module = export_module(path, CFG)
    assert module.hp.members == 2 and module.ensemble_members == 5
    full = MobilityLaw.from_path(path, CFG)
    for case in ("dipole", "quadrature, rotated"):
        net = networks()[case]
        assert_same(exported_velocities(module, net), full.velocities(net), REL_TOL)
    model.active.copy_(torch.tensor([True, True, False, False, True]))
    save_ensemble(model, path, extra)
    other = MobilityLaw.from_path(path, CFG).velocities(networks()["dipole"])
    assert np.abs(other[0] - full.velocities(networks()["dipole"])[0]).max() > 1e-3 * np.abs(other[0]).max()


def test_export_inputs_refuse_a_junction() -> None:
    net = read_network(DIPOLE_FILE)
    junction = dataclasses.replace(  # a third arm at node 0 (surface flags: no Burgers vector conservation check)
        net, segments=np.vstack([net.segments, [[0, 4]]]), burgers_angstrom=np.vstack([net.burgers_angstrom,
                                                                                         net.burgers_angstrom[:1]]),
        normals=np.vstack([net.normals, net.normals[:1]]), node_flags=np.ones(net.n_nodes, dtype=np.int64))
    with pytest.raises(UnsupportedNetworkError, match="node 0 has 3 arm"):
        export_inputs(junction, CFG)


def test_cpp_output_with_missing_rows_is_an_error() -> None:
    text = "# node vx vy vz sigma\n0 1 2 3 4\n"
    assert parse_output(text, 1)[0].tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(InputFileError, match="expected 2 rows"):
        parse_output(text, 2)


def test_input_file_writes_floats_exactly() -> None:
    inputs = export_inputs(read_network(DIPOLE_FILE), CFG)
    tokens = input_text(inputs).split()
    first_row = tokens[tokens.index("node_rows") + 1:][:12]
    assert [float(t) for t in first_row[1:4]] == inputs.positions[0].tolist()


@pytest.fixture(scope="module")
def package(law_file: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export") / "law.pt2"
    info = export_law(law_file, CFG, out, export_inputs(read_network(DIPOLE_FILE), CFG))
    print(f"export {info['export_seconds']:.1f} s, AOTInductor compile {info['compile_seconds']:.1f} s")
    return out, info


@pytest.mark.slow
def test_compiled_package_equals_the_law_on_a_rotated_network_and_a_loop(law: MobilityLaw, package) -> None:
    path, info = package
    assert info["active_members"] == 4 and path.is_file()
    compiled = load_package(path)
    cases = networks()
    for case in ("quadrature, rotated", "loop", "loop with quadrature"):
        assert_same(exported_velocities(compiled, cases[case]), law.velocities(cases[case]), REL_TOL)


@pytest.mark.slow
def test_cpp_example_prints_the_python_law_velocities(law_file: Path, package, tmp_path: Path) -> None:
    path, _ = package
    net = read_network(DIPOLE_FILE)
    out = compare_with_python(path, law_file, net, CFG, workdir=tmp_path)
    print(f"C++ build {out['cpp_build_seconds']:.1f} s, max |dv| {out['max_abs_diff_velocity_m_per_s']:.3g} m/s, "
          f"max |dsigma| {out['max_abs_diff_sigma_m_per_s']:.3g} m/s")
    assert out["max_abs_velocity_m_per_s"] > 1.0
    assert out["max_abs_diff_velocity_m_per_s"] <= 1e-5
    assert out["max_abs_diff_sigma_m_per_s"] <= 1e-5
    assert (tmp_path / "dislomob_velocities").is_file()


def test_export_command_names_a_missing_model_or_a_bad_package_name(law_file: Path, tmp_path: Path, capsys) -> None:
    from dislomob.cli import main

    missing = tmp_path / "missing.pt"
    assert main(["export", "--model", str(missing), "--out", str(tmp_path / "law.pt2"),
                 "--metrics", str(tmp_path / "export.json")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert main(["export", "--model", str(law_file), "--out", str(tmp_path / "law.pt"),
                 "--metrics", str(tmp_path / "export.json")]) == 2
    assert "must end in .pt2" in capsys.readouterr().err
    assert not (tmp_path / "export.json").exists()
