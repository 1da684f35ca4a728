"""The DDD network type, its validation and its JSON file format (dislomob.ddd.network)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from dislomob.ddd.network import (
    NODE_PINNED,
    NODE_SURFACE,
    DislocationNetwork,
    burgers_residuals,
    network_from_dict,
    network_to_dict,
    read_network,
    segment_vectors,
    write_network,
)
from dislomob.errors import InputFileError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "networks"
B = np.array([2.5, 0.0, 0.0])
ARRAY_FIELDS = ("positions_angstrom", "segments", "burgers_angstrom", "normals", "applied_stress_gpa", "cell_angstrom",
                "node_flags", "quad_positions_angstrom", "quad_segments", "quad_stress_gpa")


def shear_xz(tau: float) -> np.ndarray:
    s = np.zeros((3, 3))
    s[0, 2] = s[2, 0] = tau
    return s


def loop_kwargs() -> dict[str, Any]:
    """A hexagonal shear loop (6 nodes, radius 30 A, plane z = 0, b along x) with 2 quadrature points per segment."""
    phi = np.arange(6) * np.pi / 3
    pos = 30.0 * np.column_stack([np.cos(phi), np.sin(phi), np.zeros(6)])
    seg = np.column_stack([np.arange(6), (np.arange(6) + 1) % 6])
    t = np.array([0.25, 0.75])
    quad_pos = (pos[seg[:, 0], None, :] * (1 - t)[None, :, None] + pos[seg[:, 1], None, :] * t[None, :, None]).reshape(-1, 3)
    quad_stress = np.array([shear_xz(0.4 + 0.01 * p) + np.diag([0.1, -0.2, 0.05]) for p in range(12)])
    return dict(positions_angstrom=pos, segments=seg, burgers_angstrom=np.tile(B, (6, 1)),
                normals=np.tile([0.0, 0.0, 2.0], (6, 1)), temperature_k=300.0, applied_stress_gpa=shear_xz(0.5),
                node_flags=np.array([NODE_PINNED, 0, 0, 0, 0, 0]), quad_positions_angstrom=quad_pos,
                quad_segments=np.repeat(np.arange(6), 2), quad_stress_gpa=quad_stress)


def periodic_kwargs() -> dict[str, Any]:
    """Two straight lines along y (+b, -b), 4 nodes each, closing through a sheared periodic cell."""
    cell = np.array([[40.0, 0.0, 0.0], [3.0, 20.0, 0.0], [0.0, 0.0, 60.0]])
    pos, seg, bur = [], [], []
    for sign, frac in ((1.0, 0.25), (-1.0, 0.75)):
        start = len(pos)
        for k in range(4):
            pos.append(np.array([frac, k / 4, frac]) @ cell)
            seg.append((start + k, start + (k + 1) % 4))
            bur.append(sign * B)
    return dict(positions_angstrom=np.array(pos), segments=np.array(seg), burgers_angstrom=np.array(bur),
                normals=np.tile([0.0, 0.0, 1.0], (8, 1)), temperature_k=500.0, applied_stress_gpa=shear_xz(-0.25),
                cell_angstrom=cell)


def assert_networks_equal(a: DislocationNetwork, b: DislocationNetwork, tol: float = 1e-12) -> None:
    for name in ARRAY_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.shape == y.shape, name
            np.testing.assert_allclose(x, y, rtol=0, atol=tol, err_msg=name)
    assert abs(a.temperature_k - b.temperature_k) <= tol


@pytest.mark.parametrize("make", [loop_kwargs, periodic_kwargs])
def test_round_trip_write_read(tmp_path: Path, make: Callable[[], dict]) -> None:
    net = DislocationNetwork(**make())
    path = tmp_path / "net.json"
    assert write_network(net, path, comment="test")
    back = read_network(path)
    assert_networks_equal(net, back)
    assert json.loads(path.read_text())["units"] == {"length": "angstrom", "stress": "GPa", "temperature": "K"}
    assert not write_network(back, path, comment="test")  # same content: file left as it is
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]  # no temp file left by the atomic write


def test_quadrature_stress_round_trips(tmp_path: Path) -> None:
    net = DislocationNetwork(**loop_kwargs())
    assert net.has_quadrature_stress and net.quad_stress_gpa.shape == (12, 3, 3)
    write_network(net, tmp_path / "q.json")
    back = read_network(tmp_path / "q.json")
    np.testing.assert_allclose(back.quad_stress_gpa, net.quad_stress_gpa, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(back.quad_segments, np.repeat(np.arange(6), 2))
    np.testing.assert_allclose(back.quad_positions_angstrom, net.quad_positions_angstrom, rtol=0, atol=1e-12)


def test_node_flags_round_trip_through_index_lists(tmp_path: Path) -> None:
    kw = loop_kwargs()
    kw["node_flags"] = np.array([NODE_PINNED, NODE_SURFACE | NODE_PINNED, 0, NODE_SURFACE, 0, 0])
    data = network_to_dict(DislocationNetwork(**kw))
    assert data["surface_nodes"] == [1, 3] and data["pinned_nodes"] == [0, 1]
    np.testing.assert_array_equal(network_from_dict(data).node_flags, kw["node_flags"])
    del kw["node_flags"]
    assert "surface_nodes" not in network_to_dict(DislocationNetwork(**kw))


def test_network_is_frozen_and_normals_are_unit() -> None:
    net = DislocationNetwork(**loop_kwargs())
    np.testing.assert_allclose(np.linalg.norm(net.normals, axis=1), 1.0)
    assert net.positions_angstrom.dtype == np.float64 and net.segments.dtype == np.int64
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.temperature_k = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        net.positions_angstrom[0, 0] = 1.0


def file_dict(**units: str) -> dict[str, Any]:
    """The hexagonal loop (no quadrature, no flags) as a file object in internal units, with ``units`` overridden."""
    kw = loop_kwargs()
    for k in ("node_flags", "quad_positions_angstrom", "quad_segments", "quad_stress_gpa"):
        del kw[k]
    data = network_to_dict(DislocationNetwork(**kw))
    data["units"].update(units)
    return data


def test_nm_converts_to_angstrom_times_ten() -> None:
    data = file_dict(length="nm")
    assert data["positions"][0] == [30.0, 0.0, 0.0] and data["burgers"][0] == [2.5, 0.0, 0.0]
    net = network_from_dict(data)
    np.testing.assert_allclose(net.positions_angstrom[0], [300.0, 0.0, 0.0])
    np.testing.assert_allclose(net.burgers_angstrom[0], [25.0, 0.0, 0.0])


@pytest.mark.parametrize("unit, per_gpa", [("MPa", 1e3), ("Pa", 1e9), ("bar", 1e4), ("gpa", 1.0)])
def test_stress_units_convert_to_gpa(unit: str, per_gpa: float) -> None:
    data = file_dict(stress=unit)
    data["applied_stress"] = [[0, 0, 0.5 * per_gpa], [0, 0, 0], [0.5 * per_gpa, 0, 0]]
    net = network_from_dict(data)
    assert net.applied_stress_gpa[0, 2] == pytest.approx(0.5, rel=1e-12)


def test_b_and_mu_units_from_the_file_material() -> None:
    data = file_dict(length="b", stress="mu")
    data["material"] = {"burgers_magnitude_angstrom": 2.4727, "shear_modulus_gpa": 82.0}
    data["applied_stress"] = [[0, 0, 0.01], [0, 0, 0], [0.01, 0, 0]]
    data["burgers"] = [[1.0, 0.0, 0.0]] * 6
    net = network_from_dict(data)
    np.testing.assert_allclose(net.burgers_angstrom[0], [2.4727, 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(net.positions_angstrom[0], [30.0 * 2.4727, 0.0, 0.0], rtol=1e-12)
    assert net.applied_stress_gpa[0, 2] == pytest.approx(0.82, rel=1e-12)


def test_b_and_mu_units_from_arguments_and_conflicts(tmp_path: Path) -> None:
    data = file_dict(length="b", stress="mu")
    data["positions"] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.5, -1.0, 0.0], [1.0, -1.0, 0.0]]
    data["burgers"] = [[1.0, 0.0, 0.0]] * 6
    data["applied_stress"] = [[0.0, 0.0, 1e-3], [0.0, 0.0, 0.0], [1e-3, 0.0, 0.0]]
    path = tmp_path / "reduced.json"
    path.write_text(json.dumps(data))
    net = read_network(path, burgers_magnitude_angstrom=2.0, shear_modulus_gpa=100.0)
    np.testing.assert_allclose(net.positions_angstrom[1], [0.0, 2.0, 0.0])
    np.testing.assert_allclose(net.burgers_angstrom[0], [2.0, 0.0, 0.0])
    assert net.applied_stress_gpa[0, 2] == pytest.approx(0.1)
    with pytest.raises(InputFileError, match=r"reduced\.json: .*units\.length = 'b' needs material\.burgers_magnitude_angstrom"):
        read_network(path, shear_modulus_gpa=100.0)
    with pytest.raises(InputFileError, match=r"units\.stress = 'mu' needs material\.shear_modulus_gpa"):
        read_network(path, burgers_magnitude_angstrom=2.0)
    data["material"] = {"burgers_magnitude_angstrom": 2.5}
    path.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match=r"material\.burgers_magnitude_angstrom = 2\.5 in the file but .*=2\.0"):
        read_network(path, burgers_magnitude_angstrom=2.0, shear_modulus_gpa=100.0)


@pytest.mark.parametrize("key, value, pattern", [
    ("length", "furlong", r"units\.length = 'furlong' unknown: allowed 'angstrom', 'nm', 'b'"),
    ("stress", "psi", r"units\.stress = 'psi' unknown: allowed 'GPa', 'MPa', 'Pa', 'bar', 'mu'"),
    ("temperature", "C", r"units\.temperature = 'C' unknown: allowed 'K'"),
    ("length", None, r"units\.length missing: allowed 'angstrom', 'nm', 'b'"),
    ("stress", None, r"units\.stress missing: allowed"),
])
def test_unknown_or_missing_unit_names_the_field_and_allowed_values(key: str, value: str | None, pattern: str) -> None:
    data = file_dict()
    network_from_dict(data)
    if value is None:
        del data["units"][key]
    else:
        data["units"][key] = value
    with pytest.raises(InputFileError, match=pattern):
        network_from_dict(data)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: d.update(format_version=2), r"format_version = 2 not supported: allowed 1"),
    (lambda d: d.pop("format_version"), r"required key\(s\) missing: \['format_version'\]"),
    (lambda d: d.pop("units"), r"required key\(s\) missing: \['units'\]"),
    (lambda d: d.update(temprature=300), r"unknown key\(s\) \['temprature'\]"),
    (lambda d: d["units"].update(time="ps"), r"units: unknown key\(s\) \['time'\]"),
    (lambda d: d.update(material={"b": 2.5}), r"material = .*expected an object with keys"),
    (lambda d: d.update(pinned_nodes=[7]), r"pinned_nodes\[0\] = 7: node index out of range 0\.\.5"),
    (lambda d: d.update(quadrature={"positions": []}), r"quadrature: expected an object with exactly the keys"),
    (lambda d: d.update(segments=None), r"segments is required \(got None\)"),
    (lambda d: d.update(applied_stress=None), r"applied_stress is null"),
])
def test_file_structure_errors(mutate: Callable[[dict], Any], pattern: str) -> None:
    data = file_dict()
    network_from_dict(data)
    mutate(data)
    with pytest.raises(InputFileError, match=pattern):
        network_from_dict(data)


def _set_row(field: str, index: Any, value: Any) -> Callable[[dict], None]:
    def mutate(kw: dict) -> None:
        arr = np.array(kw[field], dtype=float if field not in ("segments", "quad_segments", "node_flags") else np.int64)
        arr[index] = value
        kw[field] = arr
    return mutate


def _zero_length_in_cell(kw: dict) -> None:
    pos = kw["positions_angstrom"].copy()
    pos[1] = pos[0] + kw["cell_angstrom"][1]
    kw["positions_angstrom"] = pos


def _extra_node(kw: dict) -> None:
    kw["positions_angstrom"] = np.vstack([kw["positions_angstrom"], [0.0, 0.0, 5.0]])
    if kw.get("node_flags") is not None:
        kw["node_flags"] = np.append(kw["node_flags"], 0)


def _asymmetric_quad(kw: dict) -> None:
    s = kw["quad_stress_gpa"].copy()
    s[3, 1, 2] += 0.2
    kw["quad_stress_gpa"] = s


def _fractional_index(kw: dict) -> None:
    seg = np.asarray(kw["segments"], dtype=float)
    seg[3, 0] += 0.5
    kw["segments"] = seg


def _drop(field: str) -> Callable[[dict], None]:
    return lambda kw: kw.update({field: None})


def _shorter(field: str) -> Callable[[dict], None]:
    return lambda kw: kw.update({field: np.asarray(kw[field])[:-1]})


VALIDATION_CASES = [
    ("dangling_segment", loop_kwargs, _set_row("segments", (2, 1), 99),
     r"segments\[2\] = \[2, 99\]: node index 99 out of range 0\.\.5 \(6 nodes\)"),
    ("negative_node_index", loop_kwargs, _set_row("segments", (0, 0), -1), r"segments\[0\] = \[-1, 1\]: node index -1 out of range"),
    ("non_integer_index", loop_kwargs, _fractional_index, r"segments\[3, 0\] = 3\.5: indices and flags must be integers"),
    ("node_without_segment", loop_kwargs, _extra_node, r"node 6 belongs to no segment"),
    ("zero_length_segment", loop_kwargs, _set_row("positions_angstrom", 1, [30.0, 0.0, 0.0]),
     r"segments\[0\] = \[0, 1\] has zero length: 0 Angstrom"),
    ("zero_length_minimum_image", periodic_kwargs, _zero_length_in_cell,
     r"segments\[0\] = \[0, 1\] has zero length \(minimum image in the cell\)"),
    ("burgers_not_conserved", loop_kwargs, _set_row("burgers_angstrom", 2, [5.0, 0.0, 0.0]),
     r"Burgers vector not conserved at node 2 \(not a surface node\): outgoing minus incoming "
     r"b = \[2\.5, 0, 0\] Angstrom \(\|residual\| 2\.5\); 2 such node"),
    ("burgers_not_conserved_periodic", periodic_kwargs, _set_row("burgers_angstrom", 7, [0.0, 0.0, -2.5]),
     r"Burgers vector not conserved at node 4 .*b = \[-2\.5, 0, 2\.5\]"),
    ("nan_position", loop_kwargs, _set_row("positions_angstrom", (2, 1), np.nan),
     r"positions_angstrom\[2, 1\] = nan: values must be finite"),
    ("inf_burgers", loop_kwargs, _set_row("burgers_angstrom", (4, 0), np.inf), r"burgers_angstrom\[4, 0\] = inf"),
    ("nan_normal", loop_kwargs, _set_row("normals", (3, 2), np.nan), r"normals\[3, 2\] = nan"),
    ("nan_applied_stress", loop_kwargs, _set_row("applied_stress_gpa", (1, 1), np.nan), r"applied_stress_gpa\[1, 1\] = nan"),
    ("inf_cell", periodic_kwargs, _set_row("cell_angstrom", (2, 2), -np.inf), r"cell_angstrom\[2, 2\] = -inf"),
    ("nan_quad_position", loop_kwargs, _set_row("quad_positions_angstrom", (5, 0), np.nan),
     r"quad_positions_angstrom\[5, 0\] = nan"),
    ("nan_quad_stress", loop_kwargs, _set_row("quad_stress_gpa", (7, 0, 1), np.nan), r"quad_stress_gpa\[7, 0, 1\] = nan"),
    ("nan_temperature", loop_kwargs, lambda kw: kw.update(temperature_k=float("nan")), r"temperature_k = nan"),
    ("negative_temperature", loop_kwargs, lambda kw: kw.update(temperature_k=-5.0),
     r"temperature_k = -5\.0: allowed a finite value >= 0 K"),
    ("asymmetric_applied_stress", loop_kwargs, _set_row("applied_stress_gpa", (0, 1), 0.3),
     r"applied_stress_gpa is not symmetric: \[0, 1\] = 0\.3 but \[1, 0\] = 0 GPa"),
    ("asymmetric_quad_stress", loop_kwargs, _asymmetric_quad, r"quad_stress_gpa\[3\] is not symmetric: \[1, 2\] = 0\.2"),
    ("zero_burgers", loop_kwargs, _set_row("burgers_angstrom", 1, 0.0),
     r"burgers_angstrom\[1\] = \[0, 0, 0\] Angstrom has zero length"),
    ("zero_normal", loop_kwargs, _set_row("normals", 4, 0.0), r"normals\[4\] = \[0, 0, 0\] has zero length"),
    ("quad_missing_segment", loop_kwargs, _set_row("quad_segments", 2, 40),
     r"quad_segments\[2\] = 40: quadrature point 2 refers to a missing segment \(allowed 0\.\.5, 6 segments\)"),
    ("quad_incomplete", loop_kwargs, _drop("quad_stress_gpa"), r"quadrature stress incomplete: quad_stress_gpa missing"),
    ("burgers_shape", loop_kwargs, _shorter("burgers_angstrom"), r"burgers_angstrom has shape \(5, 3\): expected \(6, 3\)"),
    ("normals_shape", loop_kwargs, lambda kw: kw.update(normals=np.ones((6, 2))), r"normals has shape \(6, 2\): expected \(6, 3\)"),
    ("positions_shape", loop_kwargs, lambda kw: kw.update(positions_angstrom=np.ones(18)),
     r"positions_angstrom has shape \(18,\): expected \(any, 3\)"),
    ("segments_shape", loop_kwargs, lambda kw: kw.update(segments=np.zeros((6, 3), int)),
     r"segments has shape \(6, 3\): expected \(any, 2\)"),
    ("node_flags_shape", loop_kwargs, _shorter("node_flags"), r"node_flags has shape \(5,\): expected \(6,\)"),
    ("quad_stress_shape", loop_kwargs, lambda kw: kw.update(quad_stress_gpa=kw["quad_stress_gpa"][:, :2]),
     r"quad_stress_gpa has shape \(12, 2, 3\): expected \(12, 3, 3\)"),
    ("quad_positions_shape", loop_kwargs, _shorter("quad_positions_angstrom"),
     r"quad_positions_angstrom has shape \(11, 3\): expected \(12, 3\)"),
    ("stress_shape", loop_kwargs, lambda kw: kw.update(applied_stress_gpa=np.zeros(6)),
     r"applied_stress_gpa has shape \(6,\): expected \(3, 3\)"),
    ("cell_shape", periodic_kwargs, lambda kw: kw.update(cell_angstrom=np.eye(2)),
     r"cell_angstrom has shape \(2, 2\): expected \(3, 3\)"),
    ("singular_cell", periodic_kwargs, _set_row("cell_angstrom", 2, [40.0, 0.0, 0.0]), r"cell_angstrom is singular"),
    ("bad_node_flag", loop_kwargs, _set_row("node_flags", 3, 8),
     r"node_flags\[3\] = 8: allowed 0 \(free\), 1 \(surface\), 2 \(pinned\)"),
    ("ragged_positions", loop_kwargs, lambda kw: kw.update(positions_angstrom=[[0.0, 1.0, 2.0], [1.0]]),
     r"positions_angstrom: not a numeric array"),
]


@pytest.mark.parametrize("make, mutate, pattern", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_each_validation_rule_names_the_bad_value(make: Callable[[], dict], mutate: Callable[[dict], None], pattern: str) -> None:
    kw = make()
    DislocationNetwork(**kw)  # valid before the one mutation
    mutate(kw)
    with pytest.raises(InputFileError, match=pattern):
        DislocationNetwork(**kw)


def test_read_errors_name_the_path(tmp_path: Path) -> None:
    data = file_dict()
    data["positions"][2][1] = float("nan")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match=re.escape(str(path)) + r": positions_angstrom\[2, 1\] = nan"):
        read_network(path)
    path.write_text("{\"format_version\": 1,\n  oops}")
    with pytest.raises(InputFileError, match=r"bad\.json: not valid JSON at line 2"):
        read_network(path)
    with pytest.raises(InputFileError, match=r"missing\.json: cannot read network file"):
        read_network(tmp_path / "missing.json")


def test_burgers_conserved_on_closed_loop_and_periodic_lines() -> None:
    loop = DislocationNetwork(**loop_kwargs())
    lines = DislocationNetwork(**periodic_kwargs())
    np.testing.assert_allclose(burgers_residuals(loop), 0.0, atol=1e-12)
    np.testing.assert_allclose(burgers_residuals(lines), 0.0, atol=1e-12)
    # the closing segments of the periodic lines are one node spacing long (minimum image), not a cell long
    np.testing.assert_allclose(np.linalg.norm(segment_vectors(lines), axis=1), np.linalg.norm([0.75, 5.0, 0.0]))


def test_junction_conserves_with_different_burgers_vectors() -> None:
    b2, b3 = np.array([1.0, 1.0, 0.0]), np.array([1.5, -1.0, 0.0])
    pos = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 30.0], [10.0, 0.0, 15.0], [-10.0, 0.0, 15.0], [0.0, 10.0, 15.0]])
    seg = np.array([[0, 2], [2, 1], [1, 3], [3, 0], [1, 4], [4, 0]])
    bur = np.array([b2 + b3, b2 + b3, b2, b2, b3, b3])
    net = DislocationNetwork(pos, seg, bur, np.tile([0.0, 1.0, 0.0], (6, 1)), 300.0, np.zeros((3, 3)))
    np.testing.assert_allclose(burgers_residuals(net), 0.0, atol=1e-12)


def test_open_line_needs_surface_flags_at_its_ends() -> None:
    pos = np.array([[0.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 20.0, 0.0]])
    kw = dict(positions_angstrom=pos, segments=np.array([[0, 1], [1, 2]]), burgers_angstrom=np.tile(B, (2, 1)),
              normals=np.tile([1.0, 1.0, 0.0], (2, 1)), temperature_k=0.0, applied_stress_gpa=np.zeros((3, 3)))
    with pytest.raises(InputFileError, match=r"not conserved at node 0 .*b = \[2\.5, 0, 0\]"):
        DislocationNetwork(**kw)
    with pytest.raises(InputFileError, match=r"not conserved at node 0"):
        DislocationNetwork(**kw, node_flags=np.array([NODE_PINNED, 0, NODE_PINNED]))
    net = DislocationNetwork(**kw, node_flags=np.array([NODE_SURFACE | NODE_PINNED, 0, NODE_SURFACE]))
    assert net.n_nodes == 3
    np.testing.assert_allclose(net.normals[0], [2 ** -0.5, 2 ** -0.5, 0.0])  # climb: normal not perpendicular to b


def test_shipped_dipole_sample_loads_and_validates() -> None:
    net = read_network(SAMPLES / "dipole_fe.json")
    a = 2.8553
    assert net.n_nodes == 16 and net.n_segments == 16 and net.cell_angstrom is not None
    b_hat, n_hat = np.array([1.0, 1.0, -1.0]) / np.sqrt(3), np.array([1.0, 0.0, 1.0]) / np.sqrt(2)
    np.testing.assert_allclose(net.burgers_angstrom[:8], np.tile(0.5 * a * np.array([1.0, 1.0, -1.0]), (8, 1)), atol=1e-12)
    np.testing.assert_allclose(net.burgers_angstrom[8:], -net.burgers_angstrom[:8], atol=1e-12)
    np.testing.assert_allclose(net.normals, np.tile(n_hat, (16, 1)), atol=1e-12)
    assert b_hat @ net.applied_stress_gpa @ n_hat == pytest.approx(0.5, abs=1e-12)
    assert net.temperature_k == 300.0
    vec = segment_vectors(net)
    np.testing.assert_allclose(vec, np.tile(vec[0], (16, 1)), atol=1e-9)  # straight, evenly meshed, closing through the cell
    np.testing.assert_allclose(8 * vec[0], net.cell_angstrom[1], atol=1e-9)
    np.testing.assert_allclose(burgers_residuals(net), 0.0, atol=1e-12)


def test_shipped_loop_sample_loads_and_validates() -> None:
    net = read_network(SAMPLES / "loop_fe.json")
    assert net.n_nodes == 12 and net.n_segments == 12 and net.cell_angstrom is None
    n_hat = np.array([1.0, 0.0, 1.0]) / np.sqrt(2)
    np.testing.assert_allclose(net.positions_angstrom @ n_hat, 0.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(net.positions_angstrom, axis=1), 30.0, rtol=1e-12)
    np.testing.assert_allclose(burgers_residuals(net), 0.0, atol=1e-12)
    xi = segment_vectors(net)
    force = np.cross(net.applied_stress_gpa @ net.burgers_angstrom[0], xi)
    mid = 0.5 * (net.positions_angstrom[net.segments[:, 0]] + net.positions_angstrom[net.segments[:, 1]])
    assert (np.einsum("ij,ij->i", force, mid) > 0).all()  # the applied stress expands the loop


def test_documented_minimal_example_is_valid() -> None:
    text = (ROOT / "docs" / "ddd_network_format.md").read_text()
    block = re.search(r"## Minimal example.*?```json\n(.*?)```", text, re.S)
    assert block is not None
    net = network_from_dict(json.loads(block.group(1)))
    assert net.burgers_angstrom[0, 0] == pytest.approx(2.4727)
    assert net.positions_angstrom[1, 0] == pytest.approx(10 * 2.4727)
    assert net.applied_stress_gpa[0, 2] == pytest.approx(0.5)
    assert net.node_flags.tolist() == [NODE_PINNED, 0, 0, 0]
