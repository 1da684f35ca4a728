"""The mobility law through the DDD network API (dislomob.ddd.law, dislomob.ddd.network_graph).

An untrained ensemble (random weights, feature scales fitted on the sample dipole) is saved with
save_ensemble and loaded through ``MobilityLaw.from_path``, so every check goes the way a DDD code goes.
The law obeys its symmetries by construction, so nothing learned can hide a fault here:
- rotating the whole network (positions, b, normals, cell, applied and quadrature stress) rotates the
  velocities (1e-5 relative), with the internal stress (periodic and open) and with quadrature stress;
- how a DDD code numbers and orients its nodes and segments, and in which periodic image it keeps its
  nodes, does not matter; (xi, b) -> (-xi, -b) on every segment gives the same velocities;
- reversed applied stress reverses the glide, zero applied stress on a straight periodic dipole gives
  (near) zero glide, a straight line's speed does not depend on its node spacing (0.5x to 5x);
- quadrature stress given at the law's own Gauss points reproduces the internal stress path;
- junctions, line ends and lines winding over several cell rows raise errors naming the node or line.
Velocities in m/s, lengths in Angstrom, stress in GPa.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from dislomob import graph_schema as S
from dislomob.config import Config
from dislomob.ddd.law import MobilityLaw, predict_network_file
from dislomob.ddd.network import (
    NODE_PINNED, NODE_SURFACE, DislocationNetwork, read_network, segment_vectors, write_network,
)
from dislomob.ddd.network_graph import UnsupportedNetworkError, network_graph
from dislomob.md.crystal import BURGERS, PLANE_NORMAL
from ddd_helpers import rotated, untrained_law_file
from model_helpers import random_rotation, torch_one_thread  # noqa: F401 (autouse fixture)

ROOT = Path(__file__).resolve().parents[1]
DIPOLE_FILE = ROOT / "examples" / "networks" / "dipole_fe.json"
LOOP_FILE = ROOT / "examples" / "networks" / "loop_fe.json"
CFG = Config()
B_VEC = BURGERS * CFG.material.lattice_a_angstrom
N_HAT = PLANE_NORMAL / np.linalg.norm(PLANE_NORMAL)
SPACING_ANGSTROM = 10.0 * CFG.features.node_spacing_nm


@pytest.fixture(scope="module")
def law_file(tmp_path_factory) -> Path:
    return untrained_law_file(tmp_path_factory.mktemp("law"), members=4, seed=0, cfg=CFG)


@pytest.fixture(scope="module")
def law(law_file: Path) -> MobilityLaw:
    return MobilityLaw.from_path(law_file)


def resolved_shear(tau_gpa: float) -> np.ndarray:
    """Pure resolved shear (3,3) GPa on the 1/2[1 1 -1](1 0 1) system."""
    b_hat = B_VEC / np.linalg.norm(B_VEC)
    return tau_gpa * (np.outer(b_hat, N_HAT) + np.outer(N_HAT, b_hat))


def dipole(angle_deg: float = 90.0, tau_gpa: float = 0.5, n_nodes: int = 8, line_angstrom: float = 8 * SPACING_ANGSTROM,
           glide_angstrom: float = 40.0, height_angstrom: float = 120.0) -> DislocationNetwork:
    """A periodic +b/-b dipole of straight lines of character ``angle_deg`` in the crystal frame, meshed as a DDD code
    meshes it: ``n_nodes`` per line, the last segment closing through the cell, quadrupolar arrangement."""
    b_hat = B_VEC / np.linalg.norm(B_VEC)
    theta = np.radians(angle_deg)
    xi = np.cos(theta) * b_hat + np.sin(theta) * np.cross(N_HAT, b_hat)
    cell = np.stack([glide_angstrom * np.cross(N_HAT, xi), line_angstrom * xi, height_angstrom * N_HAT])
    positions, segments, burgers = [], [], []
    for sign, frac in ((1.0, 0.25), (-1.0, 0.75)):
        start = len(positions)
        for k in range(n_nodes):
            positions.append(np.array([frac, k / n_nodes, frac]) @ cell)
            segments.append((start + k, start + (k + 1) % n_nodes))
            burgers.append(sign * B_VEC)
    return DislocationNetwork(positions_angstrom=np.array(positions), segments=np.array(segments),
                              burgers_angstrom=np.array(burgers), normals=np.tile(N_HAT, (len(segments), 1)),
                              temperature_k=300.0, applied_stress_gpa=resolved_shear(tau_gpa), cell_angstrom=cell)


def with_smooth_quadrature(net: DislocationNetwork, seed: int) -> DislocationNetwork:
    """``net`` with 1 to 3 quadrature points per segment at random places, in random order, carrying a smooth
    non-uniform stress field (GPa) plus the applied stress."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=net.n_segments)
    seg = np.repeat(np.arange(net.n_segments), counts)
    u = rng.uniform(0.05, 0.95, size=len(seg))
    pos = net.positions_angstrom[net.segments[seg, 0]] + u[:, None] * segment_vectors(net)[seg]
    s0 = rng.normal(scale=0.2, size=(3, 3))
    grad = rng.normal(scale=0.005, size=(3, 3, 3))
    field = s0[None] + np.einsum("ijk,qk->qij", grad, pos - pos.mean(axis=0))
    stress = 0.5 * (field + np.swapaxes(field, 1, 2)) + net.applied_stress_gpa[None]
    order = rng.permutation(len(seg))
    return dataclasses.replace(net, quad_positions_angstrom=pos[order], quad_segments=seg[order],
                               quad_stress_gpa=stress[order])


def line_means(v: np.ndarray, n_lines: int = 2) -> np.ndarray:
    """Mean velocity (n_lines, 3) m/s of each line of a :func:`dipole` (nodes numbered line by line)."""
    return v.reshape(n_lines, -1, 3).mean(axis=1)


def assert_close(a: np.ndarray, b: np.ndarray, rel: float) -> None:
    scale = float(np.abs(b).max())
    assert scale > 1.0  # m/s: something moves
    assert float(np.abs(a - b).max()) <= rel * scale, float(np.abs(a - b).max()) / scale


def test_sample_dipole_gives_finite_velocities_of_the_right_shape(law: MobilityLaw, law_file: Path) -> None:
    net = read_network(DIPOLE_FILE)
    v, sigma = law.velocities(net)
    assert v.shape == (net.n_nodes, 3) and sigma.shape == (net.n_nodes,)
    assert v.dtype == np.float64 and np.all(np.isfinite(v)) and np.all(np.isfinite(sigma))
    assert np.all(np.linalg.norm(v, axis=1) > 1.0) and np.all(sigma > 0)
    # the two lines carry +b and -b under one shear: they glide in opposite directions
    lines = line_means(v)
    assert float(lines[0] @ lines[1]) < 0
    out = predict_network_file(law_file, DIPOLE_FILE)
    assert json.loads(json.dumps(out))["units"] == {"velocity": "m/s", "sigma": "m/s"}
    assert out["n_nodes"] == net.n_nodes and out["stress_source"] == "internal"
    assert np.allclose(out["velocity_m_per_s"], v, rtol=1e-12, atol=0) and np.allclose(out["sigma_m_per_s"], sigma)


def test_closed_loop_without_cell_works_and_pinned_nodes_stay(law: MobilityLaw, tmp_path: Path) -> None:
    net = read_network(LOOP_FILE)
    assert net.cell_angstrom is None
    v, sigma = law.velocities(net)
    assert v.shape == (12, 3) and np.all(np.isfinite(v)) and np.all(np.linalg.norm(v, axis=1) > 1.0)
    flags = np.zeros(net.n_nodes, dtype=np.int64)
    flags[[0, 5]] = NODE_PINNED
    pinned = dataclasses.replace(net, node_flags=flags)
    write_network(pinned, tmp_path / "pinned.json")
    vp, sp = law.velocities(read_network(tmp_path / "pinned.json"))
    assert np.all(vp[[0, 5]] == 0.0) and np.all(sp[[0, 5]] == 0.0)
    keep = np.setdiff1d(np.arange(12), [0, 5])
    assert np.allclose(vp[keep], v[keep], rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", ["dipole_mixed", "sample_dipole", "loop", "quadrature"])
def test_rotating_the_whole_network_rotates_the_velocities(law: MobilityLaw, case: str) -> None:
    net = {"dipole_mixed": lambda: dipole(54.7, 0.4, n_nodes=6),
           "sample_dipole": lambda: read_network(DIPOLE_FILE),
           "loop": lambda: read_network(LOOP_FILE),
           "quadrature": lambda: with_smooth_quadrature(dipole(35.3, 0.3, n_nodes=7), seed=1)}[case]()
    rot = random_rotation(11)
    v, sigma = law.velocities(net)
    v_rot, sigma_rot = law.velocities(rotated(net, rot))
    assert_close(v_rot, v @ rot.T, 1e-5)
    assert_close(sigma_rot, sigma, 1e-5)


def ddd_numbered(net: DislocationNetwork, seed: int) -> tuple[DislocationNetwork, np.ndarray]:
    """``net`` as another DDD code might store it: nodes renumbered, segments reordered, about half of them
    stored the other way round (end to start, -b), every node in a random periodic image. Returns the network and
    ``perm`` with new node ``perm[i]`` = old node i."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(net.n_nodes)
    pos = np.empty_like(net.positions_angstrom)
    pos[perm] = net.positions_angstrom + rng.integers(-2, 3, size=(net.n_nodes, 3)) @ net.cell_angstrom
    seg_order = rng.permutation(net.n_segments)
    seg = perm[net.segments[seg_order]]
    b = net.burgers_angstrom[seg_order].copy()
    flip = rng.random(net.n_segments) < 0.5
    seg[flip] = seg[flip][:, ::-1]
    b[flip] *= -1.0
    return dataclasses.replace(net, positions_angstrom=pos, segments=seg, burgers_angstrom=b,
                               normals=net.normals[seg_order]), perm


def test_node_numbering_segment_order_and_periodic_images_do_not_matter(law: MobilityLaw) -> None:
    net = dipole(70.5, 0.5, n_nodes=9)
    other, perm = ddd_numbered(net, seed=3)
    v, sigma = law.velocities(net)
    v2, sigma2 = law.velocities(other)
    assert_close(v2[perm], v, 1e-9)
    assert_close(sigma2[perm], sigma, 1e-9)


@pytest.mark.parametrize("angle", [0.0, 54.7, 90.0])
def test_reversed_line_sense_gives_the_same_velocities(law: MobilityLaw, angle: float) -> None:
    for net in (dipole(angle, 0.5), read_network(LOOP_FILE)):
        flipped = dataclasses.replace(net, segments=net.segments[:, ::-1], burgers_angstrom=-net.burgers_angstrom)
        v, sigma = law.velocities(net)
        v2, sigma2 = law.velocities(flipped)
        assert_close(v2, v, 1e-9)
        assert_close(sigma2, sigma, 1e-9)


@pytest.mark.parametrize("angle", [0.0, 54.7, 90.0, 125.3])
def test_reversed_applied_stress_reverses_the_glide(law: MobilityLaw, angle: float) -> None:
    plus, minus = law.velocities(dipole(angle, 0.5))[0], law.velocities(dipole(angle, -0.5))[0]
    a, b = line_means(plus), line_means(minus)
    assert np.all(np.linalg.norm(a, axis=1) > 10.0)
    # the dipole's own stress is the same both ways, so the reversal is exact only up to it (consistency: 5%)
    assert np.all(np.linalg.norm(a + b, axis=1) <= 0.05 * np.linalg.norm(a, axis=1))
    # with the DDD code's stress a pure resolved shear (no internal stress), the reversal is exact
    net = dipole(angle, 0.5)
    quad = dataclasses.replace(net, quad_positions_angstrom=net.positions_angstrom,
                               quad_segments=np.arange(net.n_segments),
                               quad_stress_gpa=np.repeat(net.applied_stress_gpa[None], net.n_segments, axis=0))
    neg = dataclasses.replace(quad, quad_stress_gpa=-quad.quad_stress_gpa)
    assert_close(law.velocities(neg)[0], -law.velocities(quad)[0], 1e-12)


@pytest.mark.parametrize("angle", [0.0, 54.7, 90.0])
def test_zero_applied_stress_gives_near_zero_glide_on_a_straight_dipole(law: MobilityLaw, angle: float) -> None:
    driven = line_means(law.velocities(dipole(angle, 0.5))[0])
    still = line_means(law.velocities(dipole(angle, 0.0))[0])
    assert np.all(np.linalg.norm(still, axis=1) <= 0.05 * np.linalg.norm(driven, axis=1))


@pytest.mark.parametrize("angle", [0.0, 54.7, 90.0])
def test_straight_line_speed_does_not_depend_on_node_spacing(law: MobilityLaw, angle: float) -> None:
    length = 20 * SPACING_ANGSTROM
    means = []
    for factor in (0.5, 1.0, 2.0, 5.0):
        n = int(round(length / (factor * SPACING_ANGSTROM)))
        means.append(line_means(law.velocities(dipole(angle, 0.5, n_nodes=n, line_angstrom=length))[0]))
    ref = means[1]
    for m in means:
        assert np.all(np.linalg.norm(m - ref, axis=1) <= 1e-6 * np.linalg.norm(ref, axis=1))


def test_quadrature_stress_at_the_laws_gauss_points_reproduces_the_internal_stress(law: MobilityLaw) -> None:
    net = ddd_numbered(dipole(35.3, 0.4, n_nodes=7), seed=5)[0]
    ng = law.graph(net)
    gp = ng.graph[S.GP]
    order = np.random.default_rng(0).permutation(gp.pos.shape[0])
    quad = dataclasses.replace(net, quad_positions_angstrom=gp.pos.numpy()[order],
                               quad_segments=ng.segment_of[gp.segment.numpy()][order],
                               quad_stress_gpa=gp.stress_gpa.numpy()[order])
    assert law.graph(quad).stress_source == "quadrature"
    v, sigma = law.velocities(net)
    vq, sq = law.velocities(quad)
    assert_close(vq, v, 1e-9)
    assert_close(sq, sigma, 1e-9)


def test_quadrature_stress_is_interpolated_linearly_along_each_segment() -> None:
    net, _ = ddd_numbered(dipole(54.7, 0.5, n_nodes=6), seed=7)
    rng = np.random.default_rng(4)
    base, slope = rng.normal(size=(net.n_segments, 3, 3)), rng.normal(size=(net.n_segments, 3, 3))
    base, slope = base + np.swapaxes(base, 1, 2), slope + np.swapaxes(slope, 1, 2)
    one_point = np.arange(net.n_segments) % 3 == 0  # these get a single point: constant stress
    seg = np.concatenate([np.flatnonzero(one_point), np.repeat(np.flatnonzero(~one_point), 3)])
    u = np.concatenate([np.full(one_point.sum(), 0.3), np.tile([1.0, 0.0, 0.4], (~one_point).sum())])
    vec = segment_vectors(net)
    at = net.positions_angstrom[net.segments[seg, 0]] + u[:, None] * vec[seg]
    quad = dataclasses.replace(net, quad_positions_angstrom=at,
                               quad_segments=seg, quad_stress_gpa=base[seg] + u[:, None, None] * slope[seg])
    ng = network_graph(quad, CFG)
    gp = ng.graph[S.GP]
    stored = ng.segment_of[gp.segment.numpy()]
    rel = gp.pos.numpy() - net.positions_angstrom[net.segments[stored, 0]]
    rel -= np.rint(rel @ np.linalg.inv(net.cell_angstrom)) @ net.cell_angstrom
    u_gp = np.einsum("pk,pk->p", rel, vec[stored]) / np.einsum("pk,pk->p", vec[stored], vec[stored])
    want = base[stored] + np.where(one_point[stored], 0.3, u_gp)[:, None, None] * slope[stored]
    assert ng.flipped.any() and not ng.flipped.all()
    assert np.allclose(gp.stress_gpa.numpy(), want, rtol=0, atol=1e-12)


def test_a_segment_without_quadrature_points_is_named(law: MobilityLaw) -> None:
    net = with_smooth_quadrature(dipole(90.0, 0.5), seed=2)
    keep = net.quad_segments != 4
    bad = dataclasses.replace(net, quad_positions_angstrom=net.quad_positions_angstrom[keep],
                              quad_segments=net.quad_segments[keep], quad_stress_gpa=net.quad_stress_gpa[keep])
    with pytest.raises(UnsupportedNetworkError, match="segment 4 has no quadrature point"):
        law.velocities(bad)


def test_junctions_line_ends_and_winding_lines_raise_naming_the_node(law: MobilityLaw) -> None:
    # two 3-arm nodes joined by three arcs whose Burgers vectors sum to zero (a binary junction's topology)
    b1, b2 = np.array([1.0, 1.0, 1.0]), np.array([1.0, -1.0, -1.0])
    pos, seg, bur = [np.zeros(3), np.array([0.0, 0.0, 40.0])], [], []
    for b, offset in ((b1, [20.0, 0, 0]), (b2, [-10.0, 17.0, 0]), (-(b1 + b2), [-10.0, -17.0, 0])):
        mid = len(pos)
        pos.append(np.array([0.0, 0.0, 20.0]) + offset)
        seg += [(0, mid), (mid, 1)]
        bur += [1.2 * b, 1.2 * b]
    normals = [np.cross(b, p - q) for (i, j), b in zip(seg, bur) for p, q in [(pos[j], pos[i])]]
    theta = DislocationNetwork(positions_angstrom=np.array(pos), segments=np.array(seg), burgers_angstrom=np.array(bur),
                               normals=np.array(normals), temperature_k=300.0, applied_stress_gpa=np.zeros((3, 3)))
    with pytest.raises(UnsupportedNetworkError, match=r"node 0 has 3 arm\(s\) \(segments \[0, 2, 4\]\): a junction"):
        law.velocities(theta)
    loop = read_network(LOOP_FILE)
    flags = np.zeros(loop.n_nodes, dtype=np.int64)
    flags[[0, 11]] = NODE_SURFACE
    open_line = dataclasses.replace(loop, segments=loop.segments[:-1], burgers_angstrom=loop.burgers_angstrom[:-1],
                                    normals=loop.normals[:-1], node_flags=flags)
    with pytest.raises(UnsupportedNetworkError, match=r"node 0 has 1 arm\(s\) \(segments \[0\]\): a line end"):
        law.velocities(open_line)
    net = dipole(90.0, 0.5)
    cell = net.cell_angstrom
    diagonal = dataclasses.replace(net, positions_angstrom=net.positions_angstrom + np.outer(
        np.tile(np.arange(8) / 8, 2), cell[0]))
    with pytest.raises(UnsupportedNetworkError, match=r"nodes \[0, 1, 2, 3\]\.\.\. closes after \[1, 1, 0\] cell rows"):
        law.velocities(diagonal)


def test_a_segment_whose_burgers_vector_leaves_its_slip_plane_is_named(law: MobilityLaw) -> None:
    net = dipole(90.0, 0.5)
    normals = net.normals.copy()
    normals[5] = net.burgers_angstrom[5]
    with pytest.raises(UnsupportedNetworkError, match=r"segment 5: Burgers vector .* is not in the slip plane"):
        law.velocities(dataclasses.replace(net, normals=normals))
