"""Adapters shaped like the public DDD mobility interfaces, each a thin layer over :class:`MobilityLaw`.

Both build a :class:`DislocationNetwork` carrying the DDD code's own stress as quadrature stress and call
``MobilityLaw.velocities``; there is no second prediction path.

- :func:`ml_mobility` is shaped like MoDELib2-LANL's per-network ``MLmobility(pos, stress, burgers, cells, T)``
  (python/PIGNN): one flat point list holding the network's nodes and the quadrature (Gauss) points of its
  segments, the stress at every point, one Burgers vector per segment and one VTK-style cell per segment listing
  its start node, its quadrature points and its end node. It returns the ensemble-mean nodal velocity.
- :func:`velocity_py` is shaped like MoDELib2's per-point ``velocityPy(S, b, xi, n, T, dL, dt)`` (the Python hook of
  ``DislocationMobilityPy``): MoDELib calls it at every quadrature point of a glissile segment with the local
  stress and expects a non-negative glide speed, whose direction it takes from the glide Peach-Koehler force.

Units. MoDELib works in reduced units: lengths in units of |b| (``b_angstrom``), stress in units of the shear
modulus mu (``mu_gpa``), time in units of b/cs and so velocities in units of the shear-wave speed
cs = sqrt(mu/rho) (``cs_m_per_s``; :func:`shear_wave_speed_m_per_s`); temperature in K. A velocity v in units of cs is
also v lattice-|b| per DDD time unit b/cs. :func:`ml_mobility` takes these reduced units when given ``reduced``
(a :class:`ReducedUnits`) and the law's own units (Angstrom, GPa, m/s) otherwise; :func:`velocity_py` always takes
them. Conversions: stress_GPa = S * mu_gpa; length_Angstrom = L * b_angstrom; v_m/s = v * cs_m_per_s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import DislocationNetwork, minimum_image
from dislomob.errors import DislomobError
from dislomob.features.local_frame import MAX_BURGERS_OUT_OF_PLANE

POINT_LINE_NODES = 4
POINT_CELL_WIDTH_ANGSTROM = 1000.0
MIN_DIRECTION_NORM = 1e-12
GPA_TO_PA = 1e9


class AdapterInputError(DislomobError, ValueError):
    """An argument of an adapter with the wrong shape or a bad value; the message names the argument and index."""


@dataclass(frozen=True)
class ReducedUnits:
    """MoDELib's reduced units: |b| in Angstrom, mu in GPa, cs (shear-wave speed) in m/s; all finite and > 0."""

    b_angstrom: float
    mu_gpa: float
    cs_m_per_s: float

    def __post_init__(self) -> None:
        for name in ("b_angstrom", "mu_gpa", "cs_m_per_s"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))

    def length_angstrom(self, reduced: np.ndarray) -> np.ndarray:
        """Lengths in units of |b| -> Angstrom."""
        return reduced * self.b_angstrom

    def stress_gpa(self, reduced: np.ndarray) -> np.ndarray:
        """Stress in units of mu -> GPa."""
        return reduced * self.mu_gpa

    def velocity_reduced(self, m_per_s: np.ndarray) -> np.ndarray:
        """Velocity m/s -> units of cs (= |b| per DDD time unit b/cs)."""
        return m_per_s / self.cs_m_per_s


def shear_wave_speed_m_per_s(mu_gpa: float, density_kg_m3: float) -> float:
    """Shear-wave speed cs = sqrt(mu / rho) in m/s from mu (GPa) and the mass density (kg/m^3): MoDELib's cs."""
    mu = _positive("mu_gpa", mu_gpa)
    rho = _positive("density_kg_m3", density_kg_m3)
    return math.sqrt(mu * GPA_TO_PA / rho)


def _positive(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AdapterInputError(f"{name} = {value!r}: not a number") from None
    if not (math.isfinite(v) and v > 0):
        raise AdapterInputError(f"{name} = {v!r}: allowed a finite value > 0")
    return v


def _array(name: str, value: object, shape: tuple[int | None, ...], meaning: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape`` (None = any length); errors name the argument and index."""
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AdapterInputError(f"{name}: not a numeric array ({exc})") from None
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise AdapterInputError(f"{name} has shape {a.shape}: expected {want} ({meaning})")
    bad = ~np.isfinite(a)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"[{', '.join(map(str, first))}]" if first else ""
        raise AdapterInputError(f"{name}{where} = {float(a[first])!r}: values must be finite "
                                f"({int(bad.sum())} non-finite value(s) in {name})")
    return a


def _shape(value: object) -> tuple[int, ...]:
    """The array shape of ``value``; () when it has none (ragged lists), so that _array reports it."""
    try:
        return np.shape(value)
    except ValueError:
        return ()


def _scalar(name: str, value: object, minimum: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AdapterInputError(f"{name} = {value!r}: not a number") from None
    if not (math.isfinite(v) and v >= minimum):
        raise AdapterInputError(f"{name} = {v!r}: allowed a finite value >= {minimum:g}")
    return v


def _unit(name: str, v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if norm <= MIN_DIRECTION_NORM:
        raise AdapterInputError(f"{name} = {v.tolist()} has zero length: a direction is needed")
    return v / norm


# ---------------------------------------------------------------------------------------------- per-network call


def _cells(cells: Sequence[Sequence[int]], n_points: int) -> list[np.ndarray]:
    """The cells as integer arrays, each [start node, quadrature point(s)..., end node], indices in range."""
    if isinstance(cells, np.ndarray) and cells.ndim == 2:
        cells = list(cells)
    if not isinstance(cells, Sequence | np.ndarray) or isinstance(cells, str | bytes):
        raise AdapterInputError(f"cells = {cells!r}: expected a list of point-index lists, one per segment")
    out = []
    for k, cell in enumerate(cells):
        try:
            raw = np.array(cell, dtype=np.float64)
        except (TypeError, ValueError):
            raise AdapterInputError(f"cells[{k}] = {cell!r}: not a list of point indices") from None
        if raw.ndim != 1 or len(raw) < 3:
            raise AdapterInputError(f"cells[{k}] = {np.asarray(cell).tolist()}: expected [start node, at least one "
                                    f"quadrature point, end node] (a flat list of >= 3 point indices)")
        bad = ~np.isfinite(raw) | (raw != np.round(raw)) | (raw < 0) | (raw >= n_points)
        if bad.any():
            i = int(np.argmax(bad))
            value = int(raw[i]) if np.isfinite(raw[i]) and raw[i] == np.round(raw[i]) else float(raw[i])
            raise AdapterInputError(f"cells[{k}][{i}] = {value!r}: point indices must be integers in 0..{n_points - 1} "
                                    f"({n_points} points in pos)")
        out.append(raw.astype(np.int64))
    if not out:
        raise AdapterInputError("cells is empty: expected one cell per segment")
    return out


def _node_points(cells: list[np.ndarray], n_points: int) -> np.ndarray:
    """Indices of the points that start or end a cell; every other point must be inside exactly one cell."""
    is_node = np.zeros(n_points, dtype=bool)
    gp_count = np.zeros(n_points, dtype=np.int64)
    for cell in cells:
        is_node[cell[[0, -1]]] = True
        np.add.at(gp_count, cell[1:-1], 1)
    both = np.flatnonzero(is_node & (gp_count > 0))
    if both.size:
        p = int(both[0])
        raise AdapterInputError(f"point {p} of pos is both a node (first or last of a cell) and a quadrature point "
                                f"(inside a cell); {both.size} such point(s)")
    shared = np.flatnonzero(gp_count > 1)
    if shared.size:
        raise AdapterInputError(f"point {int(shared[0])} of pos is a quadrature point of {int(gp_count[shared[0]])} "
                                "cells: each quadrature point belongs to one segment")
    unused = np.flatnonzero(~is_node & (gp_count == 0))
    if unused.size:
        raise AdapterInputError(f"point {int(unused[0])} of pos is in no cell; {unused.size} such point(s)")
    return np.flatnonzero(is_node)


def _normals(normals: object, burgers: np.ndarray, chords: np.ndarray) -> np.ndarray:
    """Per-segment slip-plane normals: given (one (3,) for all, or (m, 3)), else b x chord (not for screw segments)."""
    m = len(burgers)
    if normals is not None:
        if len(_shape(normals)) == 1:
            return np.tile(_array("normals", normals, (3,), "one slip-plane normal for every segment"), (m, 1))
        return _array("normals", normals, (m, 3), "one slip-plane normal per segment, or one (3,) for all")
    n = np.cross(burgers, chords)
    scale = np.linalg.norm(burgers, axis=1) * np.linalg.norm(chords, axis=1)
    sin = np.linalg.norm(n, axis=1) / np.where(scale > 0, scale, 1.0)
    screw = np.flatnonzero(sin < MAX_BURGERS_OUT_OF_PLANE)
    if screw.size:
        k = int(screw[0])
        raise AdapterInputError(f"segment {k} (cells[{k}]) is (near) screw: |b_hat x xi_hat| = {sin[k]:.3g}, so b x xi "
                                "gives no slip plane; pass normals (one (3,) for all segments or (m, 3))")
    return n


def ml_mobility_network(pos: np.ndarray, stress: np.ndarray, burgers: np.ndarray, cells: Sequence[Sequence[int]],
                        T: float, *, normals: np.ndarray | None = None, cell: np.ndarray | None = None,
                        reduced: ReducedUnits | None = None) -> tuple[DislocationNetwork, np.ndarray]:
    """The :class:`DislocationNetwork` (Angstrom, GPa, K) of :func:`ml_mobility`'s arguments and ``node_points`` (the
    indices into ``pos`` of its nodes: network node k is point ``node_points[k]``); arguments as in ml_mobility."""
    p = _array("pos", pos, (None, 3), "one row x, y, z per point: nodes and quadrature points")
    n_points = len(p)
    s = stress
    if _shape(s)[1:] == (9,):
        s = _array("stress", s, (n_points, 9), "one row-major 3x3 stress per point").reshape(n_points, 3, 3)
    s = _array("stress", s, (n_points, 3, 3), "one 3x3 stress per point of pos, or one row of 9")
    cell_list = _cells(cells, n_points)
    m = len(cell_list)
    b = _array("burgers", burgers, (m, 3), f"one Burgers vector per segment ({m} cells)")
    temperature = _scalar("T", T, 0.0)
    box = None if cell is None else _array("cell", cell, (3, 3), "rows = the three periodic cell vectors")
    node_points = _node_points(cell_list, n_points)
    node_of_point = np.full(n_points, -1, dtype=np.int64)
    node_of_point[node_points] = np.arange(len(node_points))
    ends = np.array([[c[0], c[-1]] for c in cell_list])
    gp_segment = np.concatenate([np.full(len(c) - 2, k) for k, c in enumerate(cell_list)])
    gp_index = np.concatenate([c[1:-1] for c in cell_list])
    to_angstrom = 1.0 if reduced is None else reduced.b_angstrom
    to_gpa = 1.0 if reduced is None else reduced.mu_gpa
    positions = p * to_angstrom
    box_angstrom = None if box is None else box * to_angstrom
    segments = node_of_point[ends]
    chords = minimum_image(positions[ends[:, 1]] - positions[ends[:, 0]], box_angstrom)
    network = DislocationNetwork(
        positions_angstrom=positions[node_points], segments=segments, burgers_angstrom=b * to_angstrom,
        normals=_normals(normals, b, chords), temperature_k=temperature,
        applied_stress_gpa=np.zeros((3, 3)), cell_angstrom=box_angstrom,
        quad_positions_angstrom=positions[gp_index], quad_segments=gp_segment,
        quad_stress_gpa=s[gp_index] * to_gpa)
    return network, node_points


def ml_mobility(law: MobilityLaw, pos: np.ndarray, stress: np.ndarray, burgers: np.ndarray,
                cells: Sequence[Sequence[int]], T: float, *, normals: np.ndarray | None = None,
                cell: np.ndarray | None = None, reduced: ReducedUnits | None = None,
                return_sigma: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Ensemble-mean nodal velocity (n_nodes, 3), m/s (units of cs with ``reduced``), like MoDELib2-LANL's MLmobility.

    Arguments (lengths in Angstrom and stress in GPa, or |b| and mu with ``reduced``; T in K):

    - ``pos`` (n_points, 3): every node and every quadrature (Gauss) point of the network in one list (MoDELib
      writes the nodes first, then the quadrature points); a point is a node when it is the first or last entry of
      a cell, a quadrature point when it is inside one.
    - ``stress`` (n_points, 3, 3) or (n_points, 9) row-major: the total stress (applied plus the dislocations' own,
      as the DDD code computed it) at each quadrature point; the rows of node points are not used (MoDELib2-LANL
      writes zeros there). Symmetric. The law interpolates it linearly along each segment.
    - ``burgers`` (n_segments, 3): Burgers vector of each segment (cell), for the line sense of its cell.
    - ``cells``: one list per segment, [start node, quadrature point(s) in any order, end node] (indices into
      ``pos``; VTK poly-line cells as MoDELib writes them): the segment runs from the start to the end node.
    - ``T``: temperature (K).
    - ``normals`` (keyword): slip-plane normal per segment (n_segments, 3) or one (3,) for all; by default
      b x (end - start), which a (near) screw segment cannot give (raises naming the segment).
    - ``cell`` (keyword): periodic cell (3, 3), rows = cell vectors; None for an open network.

    Row k of the result is the node ``pos[node_points[k]]`` with the node points in increasing index order (with
    MoDELib's layout, nodes first, row k is point k). Every node needs exactly two arms (closed loops, periodic
    lines), as for :meth:`MobilityLaw.velocities`. ``return_sigma`` adds the ensemble spread (n_nodes,) in the same
    unit. Bad shapes or values raise :class:`AdapterInputError` naming the argument and index.
    """
    network, _ = ml_mobility_network(pos, stress, burgers, cells, T, normals=normals, cell=cell, reduced=reduced)
    velocity, sigma = law.velocities(network)
    if reduced is not None:
        velocity, sigma = reduced.velocity_reduced(velocity), reduced.velocity_reduced(sigma)
    return (velocity, sigma) if return_sigma else velocity


# ------------------------------------------------------------------------------------------------ per-point call


def point_network(S: np.ndarray, b: np.ndarray, xi: np.ndarray, n: np.ndarray, T: float, dL: float,
                  units: ReducedUnits) -> DislocationNetwork:
    """The straight line :func:`velocity_py` predicts on (Angstrom, GPa, K), from reduced S (mu), b (|b|), dL (|b|).

    An infinite straight line along xi_hat with Burgers vector b on the plane of normal n, meshed into
    :data:`POINT_LINE_NODES` segments of length dL and periodic along xi_hat (cell rows: W (n_hat x xi_hat),
    POINT_LINE_NODES * dL * xi_hat, W n_hat with W = :data:`POINT_CELL_WIDTH_ANGSTROM`), under the uniform stress S
    given as quadrature stress (one point at each segment's midpoint; it is also the network's applied stress),
    so the law sees exactly S and none of the line's own stress.
    """
    stress = _array("S", S, (3, 3), "the 3x3 stress tensor in units of mu")
    burgers = _array("b", b, (3,), "the Burgers vector in units of |b|")
    t_hat = _unit("xi", _array("xi", xi, (3,), "the unit line direction"))
    n_hat = _unit("n", _array("n", n, (3,), "the unit slip-plane normal"))
    b_hat = _unit("b", burgers)
    temperature = _scalar("T", T, 0.0)
    spacing = units.length_angstrom(_positive("dL", dL))
    for name, given, v in (("b", burgers, b_hat), ("xi", xi, t_hat)):
        out_of_plane = abs(float(v @ n_hat))
        if out_of_plane > MAX_BURGERS_OUT_OF_PLANE:
            raise AdapterInputError(f"{name} = {np.asarray(given).tolist()} is not in the slip plane n = "
                                    f"{np.asarray(n).tolist()}: |{name}_hat . n_hat| = {out_of_plane:.3g} > "
                                    f"{MAX_BURGERS_OUT_OF_PLANE}")
    n_perp = n_hat - (n_hat @ t_hat) * t_hat
    n_perp /= np.linalg.norm(n_perp)
    k = np.arange(POINT_LINE_NODES)
    positions = np.outer(k * spacing, t_hat)
    segments = np.stack([k, (k + 1) % POINT_LINE_NODES], axis=1)
    s_gpa = units.stress_gpa(stress)
    w = POINT_CELL_WIDTH_ANGSTROM
    return DislocationNetwork(
        positions_angstrom=positions, segments=segments,
        burgers_angstrom=np.tile(units.length_angstrom(burgers), (POINT_LINE_NODES, 1)),
        normals=np.tile(n_hat, (POINT_LINE_NODES, 1)), temperature_k=temperature, applied_stress_gpa=s_gpa,
        cell_angstrom=np.stack([w * np.cross(n_perp, t_hat), POINT_LINE_NODES * spacing * t_hat, w * n_perp]),
        quad_positions_angstrom=positions + 0.5 * spacing * t_hat, quad_segments=k,
        quad_stress_gpa=np.repeat(s_gpa[None], POINT_LINE_NODES, axis=0))


def velocity_py(law: MobilityLaw, S: np.ndarray, b: np.ndarray, xi: np.ndarray, n: np.ndarray, T: float, dL: float,
                dt: float, mu_gpa: float, b_angstrom: float, cs_m_per_s: float, *,
                return_sigma: bool = False) -> float | tuple[float, float]:
    """Glide speed (units of cs, >= 0) of a straight line at a point, like MoDELib2's velocityPy(S, b, xi, n, T, dL,
    dt).

    Reduced units as MoDELib passes them: ``S`` (3, 3) total stress at the point in units of mu (``mu_gpa``, GPa);
    ``b`` (3,) Burgers vector in units of |b| (``b_angstrom``, Angstrom); ``xi`` (3,) line direction and ``n`` (3,)
    slip-plane normal (any length); ``T`` in K; ``dL`` the segment length in units of |b|; ``dt`` the DDD time step
    in units of b/cs (``cs_m_per_s``, m/s). The line through the point is :func:`point_network` (straight, periodic,
    node spacing dL, uniform stress S); the result is the norm of the glide-plane part of its mean nodal velocity
    from ``MobilityLaw.velocities`` divided by cs: a speed in units of cs (= |b| per DDD time unit), >= 0 as MoDELib
    asserts, since MoDELib applies the direction of the glide Peach-Koehler force itself. ``dt`` is checked (finite,
    >= 0) but not used: the law is deterministic (MoDELib uses dL and dt for its stochastic force). ``return_sigma``
    adds the ensemble spread (same unit).
    """
    units = ReducedUnits(b_angstrom, mu_gpa, cs_m_per_s)
    _scalar("dt", dt, 0.0)
    network = point_network(S, b, xi, n, T, dL, units)
    velocity, sigma = law.velocities(network)
    v = velocity.mean(axis=0)
    n_hat = network.normals[0]
    speed = float(np.linalg.norm(v - (v @ n_hat) * n_hat)) / units.cs_m_per_s
    if return_sigma:
        return speed, float(sigma.mean()) / units.cs_m_per_s
    return speed
