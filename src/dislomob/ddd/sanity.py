"""Physics checks of a mobility law through the DDD network API, on meshed networks and on networks of MD frames.

Everything goes through :meth:`dislomob.ddd.law.MobilityLaw.velocities` on :class:`DislocationNetwork` objects,
the way a DDD code calls the law. Velocities in m/s, lengths in Angstrom (nm where named), stress in GPa, T in K.

:func:`consistency_checks` meshes straight periodic dipoles and a closed glide loop as a DDD code would (node
spacing chosen in nm, 0.5x to 5x ``features.node_spacing_nm``; the dipole cell is the MD cell of ``md.box`` with
x = glide, y = line, z = slip-plane normal, lines at (1/4, 1/4) and (3/4, 3/4) as in the MD) and checks:

- reversal: v(-tau) = -v(tau) for the +b line, within ``REVERSAL_TOL`` (the dipole's own stress is the same
  both ways, so this is exact only up to it; the tolerance of dislomob.model.consistency); and exactly
  (``EXACT_TOL``) when the DDD code supplies a pure resolved shear as quadrature stress (no internal stress);
- zero stress: |v(0)| <= ``ZERO_TOL`` |v(0.5 GPa)| on a straight dipole (the quadrupolar arrangement puts no
  resolved shear on either line);
- line sense: (xi, b) -> (-xi, -b) on every segment gives the same velocities (``EXACT_TOL``; the same
  dislocation, so anything above round-off is a fault);
- spacing: the speed of a straight line meshed at 0.5x..5x the training spacing changes by at most
  ``SPACING_TOL`` relative. Justification: collinear segments sum to the same straight-line stress field in
  exact arithmetic and the law's features hold no length (dislomob.features.invariants), so only float64
  round-off of the image sums (~1e-12 relative) separates the meshings; 1e-6 leaves six orders for it;
- loop: a closed glide loop (no cell) keeps the line-sense and exact-reversal invariances.

:func:`md_frame_networks` turns MD frames (a graph file of featurize, or a trajectory .h5 featurized on the fly)
into :class:`MDFrameNetwork` (a DislocationNetwork that also carries the MD nodal velocity y / dt and the run's
conditions). :func:`md_sanity` measures on them:

- direction: among nodes that move under the law (predicted |v| above ``moving_threshold_m_per_s`` and above
  the ensemble's spread sigma at that node), the fraction whose predicted velocity has a positive component
  along the Peach-Koehler glide force f = (sigma . b) x xi with its slip-plane-normal part removed, sigma the
  total stress at the node as the law sees it (applied + the network's own, mean over the node's Gauss points);
  target ``DIRECTION_TARGET``. The MD's own agreement (MD velocity against the same force, on nodes whose MD
  speed exceeds the threshold) is reported beside it: the ceiling the data allow;
- ordering: for every pair of runs of which one is screw-like and one edge-like (character within
  ``CHARACTER_WINDOW_DEG`` of 0/180 or 90 deg), the MD speed order of their lines (mean over frames and lines of
  the MD velocity along the line's PK glide direction) against the order of the law's straight-line speeds at
  each run's own (T, stress, character); pairs at the same (T, stress) are flagged (the fixed-condition test).
  With no such pair the ordering is not testable (``passed`` None). The character is measured from the frames'
  geometry (:func:`line_character_deg`), not taken from the run's metadata: the MD cells of some requested
  angles (54.7, 144.7, 164.2 deg) are, in the convention of ``probe_burgers_direction``, the lines at 125.3, 35.3
  and 15.8 deg, and the law tells the two apart (b_hat . xi times s_hat . xi is one of its inputs).

The default moving threshold is ``active.noise_floor_angstrom / features.dt_ps`` (the DXA noise of a nodal step
per time step, 70 m/s in the demo profile): a speed below it cannot be told from noise in the MD either.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dislomob import graph_schema as S
from dislomob.config import Config
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import DislocationNetwork, segment_vectors
from dislomob.ddd.network_graph import network_lines
from dislomob.errors import InputFileError
from dislomob.md.crystal import BURGERS
from dislomob.model.consistency import (
    ANGSTROM_PER_PS_TO_M_PER_S, REVERSAL_TOL, ZERO_TOL, demo_characters, probe_burgers_direction,
)
from dislomob.model.line_geometry import node_stress, node_tangent

SPACING_FACTORS = (0.5, 1.0, 2.0, 5.0)
SPACING_TOL = 1e-6
EXACT_TOL = 1e-9
DIRECTION_TARGET = 0.95
CHARACTER_WINDOW_DEG = 20.0
SAME_T_K, SAME_STRESS_GPA = 1.0, 0.01
CHECK_TEMPERATURES_K = (300.0, 500.0)
CHECK_STRESSES_GPA = (0.25, 0.5, 1.0)
LOADED_STRESS_GPA = 0.5
SPACING_LINE_FACTOR = 20  # the spacing check's line is this many training spacings long (5x: 4 nodes)


@dataclass(frozen=True, eq=False)
class MDFrameNetwork(DislocationNetwork):
    """A network made from one MD frame plus what the MD says: nodal velocity (n, 3) m/s over the graph's dt
    (``md_velocity_m_per_s``), the run's id, frame index, character (deg), resolved shear stress (GPa), dt (ps)."""

    md_velocity_m_per_s: np.ndarray | None = None
    traj_id: str = ""
    frame_index: int = -1
    angle_deg: float = math.nan
    stress_gpa: float = math.nan
    dt_ps: float = math.nan

    def __post_init__(self) -> None:
        super().__post_init__()
        v = self.md_velocity_m_per_s
        if v is not None:
            v = np.array(v, dtype=np.float64)
            if v.shape != (self.n_nodes, 3) or not np.all(np.isfinite(v)):
                raise InputFileError(f"md_velocity_m_per_s has shape {v.shape} or non-finite values: expected "
                                     f"({self.n_nodes}, 3) finite m/s")
            v.flags.writeable = False
            object.__setattr__(self, "md_velocity_m_per_s", v)


# ---------------------------------------------------------------- networks meshed like a DDD code meshes them

def burgers_length_angstrom(cfg: Config) -> float:
    """|b| (Angstrom) of the project's 1/2<111> Burgers vector at ``material.lattice_a_angstrom``."""
    return float(np.linalg.norm(BURGERS) * cfg.material.lattice_a_angstrom)


def resolved_shear_z(tau_gpa: float, b_hat: np.ndarray) -> np.ndarray:
    """Pure resolved shear (3, 3) GPa on the plane of normal z along the unit in-plane vector ``b_hat``."""
    z = np.array([0.0, 0.0, 1.0])
    return tau_gpa * (np.outer(b_hat, z) + np.outer(z, b_hat))


def straight_dipole(cfg: Config, angle_deg: float, tau_gpa: float, temperature_k: float, spacing_nm: float,
                    line_nm: float | None = None, flip: bool = False) -> DislocationNetwork:
    """A periodic +b/-b dipole of straight lines of character ``angle_deg`` (deg) meshed every ``spacing_nm``
    (nm, rounded to a whole number of segments per period, at least 3 so that every segment is shorter
    than half the period and its minimum image is unambiguous) in the ``md.box`` cell (x glide, y line
    of ``line_nm`` nm, z normal), under the resolved shear ``tau_gpa`` (GPa) at ``temperature_k`` (K). The +b
    line's nodes come first; ``flip`` stores every segment end to start with -b (the same dislocations)."""
    box = cfg.md.box
    lx, ly, lz = 10.0 * box.glide_nm, 10.0 * (line_nm or box.line_nm), 10.0 * box.height_nm
    if not spacing_nm > 0:
        raise ValueError(f"spacing_nm={spacing_nm}: allowed > 0")
    n = max(3, int(round(ly / (10.0 * spacing_nm))))
    b_hat = probe_burgers_direction(angle_deg)
    b = burgers_length_angstrom(cfg) * b_hat
    positions, segments, burgers = [], [], []
    for sign, frac in ((1.0, 0.25), (-1.0, 0.75)):
        start = len(positions)
        for k in range(n):
            positions.append([frac * lx, ly * k / n, frac * lz])
            segments.append((start + k, start + (k + 1) % n))
            burgers.append(sign * b)
    seg, bur = np.array(segments), np.array(burgers)
    if flip:
        seg, bur = seg[:, ::-1], -bur
    return DislocationNetwork(positions_angstrom=np.array(positions), segments=seg, burgers_angstrom=bur,
                              normals=np.tile([0.0, 0.0, 1.0], (len(seg), 1)), temperature_k=temperature_k,
                              applied_stress_gpa=resolved_shear_z(tau_gpa, b_hat),
                              cell_angstrom=np.diag([lx, ly, lz]))


def glide_loop(cfg: Config, tau_gpa: float, temperature_k: float, spacing_nm: float,
               radius_nm: float | None = None) -> DislocationNetwork:
    """A closed circular glide loop (no cell) of radius ``radius_nm`` (nm, default ``md.loop.radius_nm``) in the
    plane z = 0, b along x, meshed every ``spacing_nm`` (nm; at least 6 nodes), under resolved shear ``tau_gpa``."""
    r = 10.0 * (radius_nm or cfg.md.loop.radius_nm)
    n = max(6, int(round(2 * math.pi * r / (10.0 * spacing_nm))))
    phi = 2 * math.pi * np.arange(n) / n
    pos = np.column_stack([r * np.cos(phi), r * np.sin(phi), np.zeros(n)])
    b_hat = np.array([1.0, 0.0, 0.0])
    ring = np.column_stack([np.arange(n), np.roll(np.arange(n), -1)])
    return DislocationNetwork(positions_angstrom=pos, segments=ring,
                              burgers_angstrom=np.tile(burgers_length_angstrom(cfg) * b_hat, (n, 1)),
                              normals=np.tile([0.0, 0.0, 1.0], (n, 1)), temperature_k=temperature_k,
                              applied_stress_gpa=resolved_shear_z(tau_gpa, b_hat))


def with_applied_quadrature(net: DislocationNetwork) -> DislocationNetwork:
    """``net`` with the DDD code's quadrature stress set to the applied stress alone (one point per segment, at
    its start node): the law then sees no internal stress."""
    m = net.n_segments
    return dataclasses.replace(net, quad_positions_angstrom=net.positions_angstrom[net.segments[:, 0]],
                               quad_segments=np.arange(m),
                               quad_stress_gpa=np.repeat(net.applied_stress_gpa[None], m, axis=0))


def plus_line_speed(law: MobilityLaw, net: DislocationNetwork) -> float:
    """Mean speed (m/s) of the +b line of a :func:`straight_dipole` along its positive-tau glide direction (-x)."""
    v = law.velocities(net)[0]
    return float(-v[: net.n_nodes // 2, 0].mean())


def straight_line_speed(law: MobilityLaw, angle_deg: float, tau_gpa: float, temperature_k: float) -> float:
    """Speed (m/s) of a straight line of character ``angle_deg`` in the MD dipole cell at (tau, T), meshed at the
    training spacing, along the glide direction in which a positive tau pushes it."""
    cfg = law.cfg
    return plus_line_speed(law, straight_dipole(cfg, angle_deg, tau_gpa, temperature_k, cfg.features.node_spacing_nm))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| relative to max |b| (1 m/s floor)."""
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1.0))


def consistency_checks(law: MobilityLaw, cfg: Config, temperatures_k: tuple[float, ...] = CHECK_TEMPERATURES_K,
                       stresses_gpa: tuple[float, ...] = CHECK_STRESSES_GPA) -> dict[str, Any]:
    """The checks of the module docstring on meshed dipoles and a loop, at ``temperatures_k`` (K) and resolved
    shears ``stresses_gpa`` (GPa, reversal); per check its cases, worst value, tolerance and ``passed``; overall
    ``passed``. Speeds in m/s."""
    spacing = cfg.features.node_spacing_nm
    chars = demo_characters(cfg)
    out: dict[str, Any] = {"spacing_nm": spacing, "characters_deg": chars}
    rev, exact, zero, sense, space = [], [], [], [], {}
    for name, a in chars.items():
        for t in temperatures_k:
            for s in stresses_gpa:
                plus = plus_line_speed(law, straight_dipole(cfg, a, s, t, spacing))
                minus = plus_line_speed(law, straight_dipole(cfg, a, -s, t, spacing))
                dev = abs(plus + minus) / max(abs(plus), abs(minus), 1e-12)
                rev.append({"character": name, "temperature_k": t, "stress_gpa": s, "speed_m_per_s": plus,
                            "reversed_m_per_s": minus, "deviation": dev,
                            "ok": bool(plus * minus < 0 and dev <= REVERSAL_TOL)})
            net = with_applied_quadrature(straight_dipole(cfg, a, LOADED_STRESS_GPA, t, spacing))
            neg = dataclasses.replace(net, quad_stress_gpa=-net.quad_stress_gpa,
                                      applied_stress_gpa=-net.applied_stress_gpa)
            v, v_neg = law.velocities(net)[0], law.velocities(neg)[0]
            exact.append({"character": name, "temperature_k": t, "deviation": _rel(v_neg, -v)})
            loaded = plus_line_speed(law, straight_dipole(cfg, a, LOADED_STRESS_GPA, t, spacing))
            still = plus_line_speed(law, straight_dipole(cfg, a, 0.0, t, spacing))
            ratio = abs(still) / max(abs(loaded), 1e-12)
            zero.append({"character": name, "temperature_k": t, "loaded_m_per_s": loaded, "zero_m_per_s": still,
                         "ratio": ratio, "ok": bool(ratio <= ZERO_TOL)})
        net = straight_dipole(cfg, a, LOADED_STRESS_GPA, 300.0, spacing)
        flipped = straight_dipole(cfg, a, LOADED_STRESS_GPA, 300.0, spacing, flip=True)
        sense.append({"character": name, "deviation": _rel(law.velocities(flipped)[0], law.velocities(net)[0])})
        line_nm = SPACING_LINE_FACTOR * spacing
        space[name] = [plus_line_speed(law, straight_dipole(cfg, a, LOADED_STRESS_GPA, 300.0, f * spacing, line_nm))
                       for f in SPACING_FACTORS]
    ref = {k: v[SPACING_FACTORS.index(1.0)] for k, v in space.items()}
    space_dev = max(abs(s - ref[k]) / max(abs(ref[k]), 1.0) for k, v in space.items() for s in v)
    out["reversal"] = {"tol": REVERSAL_TOL, "cases": rev, "worst": max(r["deviation"] for r in rev),
                       "pass_fraction": float(np.mean([r["ok"] for r in rev])), "passed": all(r["ok"] for r in rev)}
    worst_exact = max(r["deviation"] for r in exact)
    out["reversal_exact"] = {"tol": EXACT_TOL, "cases": exact, "worst": worst_exact, "passed": worst_exact <= EXACT_TOL}
    out["zero_stress"] = {"tol": ZERO_TOL, "cases": zero, "worst": max(r["ratio"] for r in zero),
                          "passed": all(r["ok"] for r in zero)}
    worst_sense = max(r["deviation"] for r in sense)
    out["line_sense"] = {"tol": EXACT_TOL, "cases": sense, "worst": worst_sense, "passed": worst_sense <= EXACT_TOL}
    out["spacing"] = {"tol": SPACING_TOL, "factors": list(SPACING_FACTORS), "speeds_m_per_s": space,
                      "worst": space_dev, "passed": space_dev <= SPACING_TOL}
    out["loop"] = _loop_checks(law, cfg)
    out["passed"] = all(out[k]["passed"] for k in ("reversal", "reversal_exact", "zero_stress", "line_sense",
                                                    "spacing", "loop"))
    return out


def _loop_checks(law: MobilityLaw, cfg: Config) -> dict[str, Any]:
    """Line sense and exact reversal on a closed glide loop meshed at the training spacing."""
    loop = glide_loop(cfg, LOADED_STRESS_GPA, 300.0, cfg.features.node_spacing_nm)
    v = law.velocities(loop)[0]
    flipped = dataclasses.replace(loop, segments=loop.segments[:, ::-1], burgers_angstrom=-loop.burgers_angstrom)
    sense = _rel(law.velocities(flipped)[0], v)
    quad = with_applied_quadrature(loop)
    neg = dataclasses.replace(quad, quad_stress_gpa=-quad.quad_stress_gpa, applied_stress_gpa=-quad.applied_stress_gpa)
    exact = _rel(law.velocities(neg)[0], -law.velocities(quad)[0])
    return {"n_nodes": loop.n_nodes, "line_sense_deviation": sense, "reversal_exact_deviation": exact,
            "tol": EXACT_TOL, "passed": bool(sense <= EXACT_TOL and exact <= EXACT_TOL)}


# ---------------------------------------------------------------- networks of MD frames

def record_network(rec: dict, meta: dict[str, Any], cfg: Config) -> MDFrameNetwork:
    """The DDD network of one graph record (dislomob.features.graphs.to_record) of a trajectory with metadata
    ``meta`` (graph file meta): nodes, segments (node g starts segment g), b = |b| b_hat and normals from the node
    frames, cell, T, the run's applied stress tensor, and the MD velocity (frame^T y) / dt in m/s."""
    run = meta.get("trajectory", {})
    try:
        applied = np.asarray(run["stress_tensor_gpa"], dtype=np.float64)
        b_len = float(np.linalg.norm(run["burgers"])) * cfg.material.lattice_a_angstrom
    except KeyError as err:
        raise InputFileError(f"graph metadata lacks trajectory.{err.args[0]} "
                             "(needed for the applied stress and |b|)") from None
    node, g = rec[S.NODE], rec["graph"]
    frame = node["frame"].double().numpy()
    src, dst = rec["edges"]["node__seg__node"].numpy()
    if not np.array_equal(src, np.arange(len(src))):
        raise InputFileError(f"graph record {g['traj_id']} frame {g['frame_index']}: "
                             "segment g does not start at node g")
    dt = float(g["dt_ps"].reshape(-1)[0])
    y_cart = np.einsum("nji,nj->ni", frame, node["y"].double().numpy())
    return MDFrameNetwork(positions_angstrom=node["pos"].double().numpy(), segments=np.column_stack([src, dst]),
                          burgers_angstrom=b_len * frame[src, 0], normals=frame[src, 1],
                          temperature_k=float(g["temperature_k"].reshape(-1)[0]), applied_stress_gpa=applied,
                          cell_angstrom=g["cell"].double().numpy()[0],
                          md_velocity_m_per_s=y_cart / dt * ANGSTROM_PER_PS_TO_M_PER_S, traj_id=str(g["traj_id"]),
                          frame_index=int(g["frame_index"]), angle_deg=float(g["angle_deg"].reshape(-1)[0]),
                          stress_gpa=float(g["stress_gpa"].reshape(-1)[0]), dt_ps=dt)


def md_frame_networks(path: str | Path, cfg: Config) -> list[MDFrameNetwork]:
    """Networks of every usable frame of an MD run: a featurize graph file (``.pt``) or a trajectory file
    (``.h5``, featurized here with ``cfg``); unreadable files raise InputFileError naming them."""
    from dislomob.features.featurize import _graph_meta, featurize_trajectory, read_trajectory_file
    from dislomob.features.graphs import read_graph_file

    path = Path(path)
    if path.suffix == ".pt":
        data = read_graph_file(path)
        records, meta = data["graphs"], data["meta"]
    elif path.suffix == ".h5":
        traj = read_trajectory_file(path)
        records, meta = featurize_trajectory(traj, cfg, path.stem).records, _graph_meta(cfg, path, traj)
    else:
        raise InputFileError(f"{path}: suffix {path.suffix!r} not allowed: "
                             "a graph file (.pt) or an MD trajectory (.h5)")
    try:
        return [record_network(r, meta, cfg) for r in records]
    except InputFileError as err:
        raise InputFileError(f"{path}: {err}") from None


def pk_glide_force(law: MobilityLaw, net: DislocationNetwork) -> np.ndarray:
    """Peach-Koehler glide force per unit length (n, 3) GPa*Angstrom at every network node: (sigma . b) x xi with
    the slip-plane-normal part removed; sigma the total stress the law sees at the node, xi the unit tangent."""
    ng = law.graph(net)
    g = ng.graph
    stress = node_stress(g, torch.float64).numpy()
    xi = node_tangent(g, torch.float64).numpy()
    frame = g[S.NODE].frame.double().numpy()
    b = frame[:, 0] * np.linalg.norm(net.burgers_angstrom[ng.segment_of], axis=1)[:, None]
    f = np.cross(np.einsum("nab,nb->na", stress, b), xi)
    n_hat = frame[:, 1]
    f = f - np.einsum("nk,nk->n", f, n_hat)[:, None] * n_hat
    out = np.zeros((net.n_nodes, 3))
    out[ng.node_of] = f
    return out


def line_character_deg(net: DislocationNetwork) -> float:
    """Character angle (deg, 0 <= . < 180) of the first line of ``net`` in the convention of
    :func:`straight_dipole`: b_hat = (-sin, cos) in the (xi x n, xi) axes of the plane, xi the line's mean
    in-plane direction. Measured from the geometry, so it holds whatever angle the run's metadata names."""
    line = network_lines(net)[0]
    sense = np.where(line.flipped, -1.0, 1.0)[:, None]
    n_hat = net.normals[line.segments[0]]
    xi = (segment_vectors(net)[line.segments] * sense).sum(axis=0)
    xi = xi - (xi @ n_hat) * n_hat
    b = net.burgers_angstrom[line.segments[0]] * sense[0]
    return float(np.degrees(np.arctan2(-b @ np.cross(xi, n_hat), b @ xi)) % 180.0)


def _character_class(angle_deg: float) -> str | None:
    a = min(angle_deg % 180.0, 180.0 - angle_deg % 180.0)
    if a <= CHARACTER_WINDOW_DEG:
        return "screw"
    if abs(a - 90.0) <= CHARACTER_WINDOW_DEG:
        return "edge"
    return None


def _line_speeds(net: DislocationNetwork, v: np.ndarray, f: np.ndarray) -> list[float]:
    """Speed (m/s) of each line of ``net`` along its mean PK glide direction."""
    out = []
    for line in network_lines(net):
        d = f[line.nodes].mean(axis=0)
        norm = np.linalg.norm(d)
        if norm > 0:
            out.append(float(v[line.nodes].mean(axis=0) @ d / norm))
    return out


def md_sanity(law: MobilityLaw, networks: list[MDFrameNetwork],
              moving_threshold_m_per_s: float | None = None) -> dict[str, Any]:
    """Direction agreement with the PK glide force and screw/edge speed ordering against the MD (module docstring)
    on networks of MD frames; thresholds in m/s (default: the DXA noise floor per step)."""
    if not networks:
        raise ValueError("md_sanity needs at least one network of an MD frame")
    cfg = law.cfg
    thr = (cfg.active.noise_floor_angstrom / cfg.features.dt_ps * ANGSTROM_PER_PS_TO_M_PER_S
           if moving_threshold_m_per_s is None else float(moving_threshold_m_per_s))
    if not (thr >= 0 and math.isfinite(thr)):
        raise ValueError(f"moving_threshold_m_per_s={moving_threshold_m_per_s}: allowed a finite value >= 0")
    agree = moving = md_agree = md_moving = applied_agree = n_nodes = 0
    runs: dict[str, dict[str, Any]] = {}
    for net in networks:
        v, sigma = law.velocities(net)
        f = pk_glide_force(law, net)
        proj = np.einsum("nk,nk->n", v, f)
        speed = np.linalg.norm(v, axis=1)
        move = (speed > thr) & (speed > sigma)
        agree += int((proj[move] > 0).sum())
        moving += int(move.sum())
        n_nodes += net.n_nodes
        f_app = _applied_glide_force(law, net)
        applied_agree += int((np.einsum("nk,nk->n", v, f_app)[move] > 0).sum())
        if getattr(net, "md_velocity_m_per_s", None) is not None:
            v_md = net.md_velocity_m_per_s
            md_move = np.linalg.norm(v_md, axis=1) > thr
            md_agree += int((np.einsum("nk,nk->n", v_md, f)[md_move] > 0).sum())
            md_moving += int(md_move.sum())
            run = runs.setdefault(net.traj_id, {"traj_id": net.traj_id, "angle_deg": net.angle_deg,
                                                "line_angle_deg": line_character_deg(net),
                                                "temperature_k": net.temperature_k, "stress_gpa": net.stress_gpa,
                                                "md": [], "law_on_frames": []})
            run["md"] += _line_speeds(net, v_md, f)
            run["law_on_frames"] += _line_speeds(net, v, f)
    frac = agree / moving if moving else None
    direction = {"moving_threshold_m_per_s": thr, "n_networks": len(networks), "n_nodes": n_nodes,
                 "n_moving": moving, "agree_fraction": frac, "target": DIRECTION_TARGET,
                 "applied_stress_agree_fraction": applied_agree / moving if moving else None,
                 "md_n_moving": md_moving, "md_agree_fraction": md_agree / md_moving if md_moving else None,
                 "passed": None if frac is None else bool(frac >= DIRECTION_TARGET)}
    ordering = _ordering(law, list(runs.values()))
    return {"direction": direction, "ordering": ordering,
            "passed": bool(direction["passed"] is True and ordering["passed"] is not False)}


def _applied_glide_force(law: MobilityLaw, net: DislocationNetwork) -> np.ndarray:
    """PK glide force (n, 3) of the applied stress alone (the network's own stress left out)."""
    return pk_glide_force(law, with_applied_quadrature(net))


def _ordering(law: MobilityLaw, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Screw/edge speed order of MD runs against the law's straight lines at each run's conditions (character
    measured from the frames' geometry, :func:`line_character_deg`)."""
    table = []
    for run in runs:
        cls = _character_class(run["line_angle_deg"])
        straight = (straight_line_speed(law, run["line_angle_deg"], run["stress_gpa"], run["temperature_k"])
                    if cls and math.isfinite(run["stress_gpa"]) else None)
        table.append({"traj_id": run["traj_id"], "character": cls, "angle_deg": run["angle_deg"],
                      "line_angle_deg": run["line_angle_deg"],
                      "temperature_k": run["temperature_k"], "stress_gpa": run["stress_gpa"],
                      "md_speed_m_per_s": float(np.mean(run["md"])) if run["md"] else None,
                      "law_on_frames_m_per_s": float(np.mean(run["law_on_frames"])) if run["law_on_frames"] else None,
                      "law_straight_m_per_s": straight})
    pairs = []
    usable = [r for r in table if r["md_speed_m_per_s"] is not None and r["law_straight_m_per_s"] is not None]
    for s in (r for r in usable if r["character"] == "screw"):
        for e in (r for r in usable if r["character"] == "edge"):
            md_edge_faster = e["md_speed_m_per_s"] > s["md_speed_m_per_s"]
            law_edge_faster = e["law_straight_m_per_s"] > s["law_straight_m_per_s"]
            same = (abs(e["temperature_k"] - s["temperature_k"]) <= SAME_T_K
                    and abs(e["stress_gpa"] - s["stress_gpa"]) <= SAME_STRESS_GPA)
            pairs.append({"screw": s["traj_id"], "edge": e["traj_id"], "same_conditions": bool(same),
                          "md_edge_faster": bool(md_edge_faster), "law_edge_faster": bool(law_edge_faster),
                          "agree": bool(md_edge_faster == law_edge_faster)})
    same_pairs = [p for p in pairs if p["same_conditions"]]
    return {"runs": table, "pairs": pairs, "n_pairs": len(pairs), "n_same_condition_pairs": len(same_pairs),
            "agree_fraction": float(np.mean([p["agree"] for p in pairs])) if pairs else None,
            "same_condition_agree_fraction": float(np.mean([p["agree"] for p in same_pairs])) if same_pairs else None,
            "passed": all(p["agree"] for p in pairs) if pairs else None}


def check_law(law: MobilityLaw, cfg: Config, networks: list[MDFrameNetwork]) -> dict[str, Any]:
    """Consistency checks, MD-frame direction agreement and screw/edge ordering of ``law``; ``passed`` is True when
    every testable part passed (an ordering with no screw/edge pair is not testable and does not count)."""
    consistency = consistency_checks(law, cfg)
    md = md_sanity(law, networks)
    parts = [consistency["passed"], md["direction"]["passed"], md["ordering"]["passed"]]
    return {"consistency": consistency, "md": md,
            "passed": bool(parts[0] and parts[1] is True and parts[2] is not False)}


def sanity_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of a :func:`check_law` result as flat ``sanity_*`` metrics (booleans as 0/1, parts
    that could not be measured left out), e.g. for MLflow."""
    c, d, o = result["consistency"], result["md"]["direction"], result["md"]["ordering"]
    out = {"sanity_passed": result["passed"], "sanity_consistency_passed": c["passed"],
           "sanity_reversal_worst": c["reversal"]["worst"], "sanity_reversal_exact_worst": c["reversal_exact"]["worst"],
           "sanity_zero_stress_worst": c["zero_stress"]["worst"], "sanity_line_sense_worst": c["line_sense"]["worst"],
           "sanity_spacing_worst": c["spacing"]["worst"], "sanity_direction_n_moving": d["n_moving"],
           "sanity_direction_agree_fraction": d["agree_fraction"], "sanity_md_direction_agree_fraction":
           d["md_agree_fraction"], "sanity_ordering_n_pairs": o["n_pairs"],
           "sanity_ordering_agree_fraction": o["agree_fraction"], "sanity_ordering_passed": o["passed"]}
    return {k: float(v) for k, v in out.items() if v is not None}
