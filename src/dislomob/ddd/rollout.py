"""Multi-step DDD rollout of a mobility law and its error against MD (paper Fig. 6).

Units: Angstrom, ps, GPa, K; velocities in m/s (1 Angstrom/ps = 100 m/s).

A law is anything with ``velocities(network) -> (velocity (n, 3) m/s, sigma (n,) m/s)``: the PI-GNN ensemble
(:class:`dislomob.ddd.law.MobilityLaw`) or the fitted phenomenological law (:func:`baseline_law`, the same
:class:`MobilityLaw` path around :class:`dislomob.model.phenomenological.PhenomenologicalMobility`), so both see the same
graph, stress and geometry. The PI-GNN predicts a displacement over ``features.dt_ps``; MobilityLaw turns it
into a velocity, so the rollout step h may be smaller than ``features.dt_ps``.

One step of :func:`rollout` from positions x with step h (ps):

- the stress at the Gauss points is the network's own non-singular stress (periodic images, cell-average
  removed as in featurize) plus the applied stress (MobilityLaw computes it; any quadrature stress the input
  network carries is dropped before the first step, since it would be stale after the first move);
- ``euler``: x' = x + h v(x); ``heun`` (explicit trapezoidal, 2nd order): x* = x + h v(x),
  x' = x + h/2 (v(x) + v(x*)); pinned nodes do not move;
- remesh (dislomob.ddd.remesh): segments kept within [min, max] spacing, nodes wrapped into the periodic cell
  (periodic lines stay periodic: segments are minimum-image vectors shorter than half the cell).

Step size (measured, demo ensemble, held-out edge run, nodes every 6 Angstrom): the line shape has a stiff
mode; at h = 0.2 ps nodes scatter by ~3 Angstrom, at 0.1 ps the glide after 1 ps is off by ~0.6 Angstrom from
the converged value, at 0.05 ps Euler and Heun agree with Heun at 0.025 ps within 0.1 Angstrom (relative errors
within 0.01). Heun has the same stability limit as Euler on such a mode, so the default is Euler at 0.05 ps
(``rollout`` config). The stiffness falls with the square of the node spacing (paper: 1.5 nm, dt ~1 ps).
A step is shortened where the fastest node would move more than ``rollout.max_move_angstrom`` (as ParaDiS's
rmax): the dipole-trained law on shear loops at 1.5-2.25 GPa (outside its training stresses) predicts single
nodes at 60-90 Angstrom/ps, and fixed 0.05 ps Euler steps then diverged within 8 steps (measured 2026-11-27).

:func:`rollout_errors` starts from an MD frame (its DXA lines resampled as featurize resamples them), rolls every
law out to the later MD frame times and measures error(t) = d(rollout(t), MD(t)) / d(MD(0), MD(t)) with the
symmetric line distance d of dislomob.ddd.line_distance (relative to not moving at all). A minimum-image
distance cannot tell a line that moved by more than half the image spacing across it from one that moved less
(4 nm demo glide cells: ~20 Angstrom, under 2 ps for fast edges), so MD lines (frame to frame) and rollout lines
(step to step) are followed through time and compared at the periodic images they reached (unwrapped).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dislomob.config import Config
from dislomob.ddd.line_distance import (
    Polyline, centred, frame_polylines, line_distance, network_polylines, translated, unwrapped_line_distance,
)
from dislomob.ddd.network import NODE_PINNED, DislocationNetwork
from dislomob.ddd.remesh import check_spacing, remesh, wrap_positions
from dislomob.features.discretize import DiscretizationError, discretize_line
from dislomob.features.featurize import read_trajectory_file, slip_plane_normal
from dislomob.features.local_frame import line_frame
from dislomob.md.analysis import crystal_frames
from dislomob.md.trajectory import Frame, TrajectoryMeta
from dislomob.model.consistency import ANGSTROM_PER_PS_TO_M_PER_S
from dislomob.train.buckets import bucket_of

if TYPE_CHECKING:
    from dislomob.ddd.law import MobilityLaw

SCHEMES = ("euler", "heun")
TIME_TOL_PS = 1e-6


class VelocityLaw(Protocol):
    """What the rollout needs of a mobility law."""

    def velocities(self, network: DislocationNetwork) -> tuple[np.ndarray, np.ndarray]:
        """(velocity (n, 3) m/s, sigma (n,) m/s) of every node of ``network``."""
        ...


@dataclass(frozen=True)
class Rollout:
    """Networks at ``times_ps`` (ps after the start; the start itself first), the steps taken, law calls, the
    wall time (s) of the whole rollout and ``line_displacements`` (records, lines, 3) Angstrom: each line's
    displacement across itself since the start, followed step by step, so unwrapped through the periodic cell
    (lines in the order of ``network_polylines``, which remeshing keeps)."""

    times_ps: np.ndarray
    networks: list[DislocationNetwork]
    n_steps: int
    n_law_calls: int
    wall_s: float
    line_displacements: np.ndarray


def baseline_law(path: str | Path, cfg: Config | None = None) -> MobilityLaw:
    """The fitted phenomenological law of ``baseline.json`` (train stage) behind the MobilityLaw interface."""
    from dislomob.ddd.law import MobilityLaw
    from dislomob.model.phenomenological import load_baseline

    return MobilityLaw(load_baseline(path), cfg)


def _moved(network: DislocationNetwork, positions: np.ndarray) -> DislocationNetwork:
    return dataclasses.replace(network, positions_angstrom=wrap_positions(positions, network.cell_angstrom))


def _velocity_angstrom_per_ps(law: VelocityLaw, network: DislocationNetwork) -> np.ndarray:
    v = np.asarray(law.velocities(network)[0], dtype=np.float64) / ANGSTROM_PER_PS_TO_M_PER_S
    if v.shape != (network.n_nodes, 3):
        raise ValueError(f"law returned velocities of shape {v.shape}: expected ({network.n_nodes}, 3)")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"law returned non-finite velocities at node(s) {np.flatnonzero(~np.isfinite(v).all(1))[:5]}")
    if network.node_flags is not None:
        v[(network.node_flags & NODE_PINNED) != 0] = 0.0
    return v


class RolloutUnstableError(ValueError):
    """The displacement limit asked for steps below ``MIN_STEP_FRACTION`` of the nominal step: the law's speeds
    diverge (an explicit integrator cannot follow them)."""


MIN_STEP_FRACTION = 1e-3


def step(law: VelocityLaw, network: DislocationNetwork, h_ps: float, scheme: str = "euler",
         v: np.ndarray | None = None) -> DislocationNetwork:
    """Positions advanced by one explicit step of ``h_ps`` ps (module docstring), wrapped, not remeshed; ``v``
    (Angstrom/ps) = the law's velocities at ``network`` when already computed."""
    x = network.positions_angstrom
    v = _velocity_angstrom_per_ps(law, network) if v is None else v
    if scheme == "euler":
        return _moved(network, x + h_ps * v)
    v_star = _velocity_angstrom_per_ps(law, _moved(network, x + h_ps * v))
    return _moved(network, x + 0.5 * h_ps * (v + v_star))


def advance(law: VelocityLaw, network: DislocationNetwork, h_ps: float, scheme: str, max_move_angstrom: float | None,
            min_spacing_angstrom: float, max_spacing_angstrom: float, min_nodes: int) -> tuple[DislocationNetwork, int]:
    """``network`` advanced by ``h_ps`` ps and remeshed: one step, or with ``max_move_angstrom`` as many shorter
    steps as keep every node's move within it (the fastest node sets the step, as ParaDiS's rmax; remeshed after
    each). Returns (network, steps taken); RolloutUnstableError when a step would fall below MIN_STEP_FRACTION h."""
    done, n = 0.0, 0
    while h_ps - done > TIME_TOL_PS * 1e-3 or n == 0:
        v = _velocity_angstrom_per_ps(law, network)
        h = h_ps - done
        if max_move_angstrom is not None:
            fastest = float(np.linalg.norm(v, axis=1).max(initial=0.0))
            if fastest * h > max_move_angstrom:
                h = max_move_angstrom / fastest
                if h < MIN_STEP_FRACTION * h_ps:
                    raise RolloutUnstableError(
                        f"the law's fastest node moves at {fastest:.4g} Angstrom/ps: keeping its moves within "
                        f"max_move_angstrom={max_move_angstrom} needs steps of {h:.3g} ps, below "
                        f"{MIN_STEP_FRACTION:g} x the step of {h_ps:g} ps (speeds diverge)")
        network = remesh(step(law, network, h, scheme, v), min_spacing_angstrom, max_spacing_angstrom, min_nodes)
        done, n = done + h, n + 1
    return network, n


def rollout_to(law: VelocityLaw, network: DislocationNetwork, times_ps: Sequence[float], max_dt_ps: float,
               min_spacing_angstrom: float, max_spacing_angstrom: float, scheme: str = "euler", min_nodes: int = 4,
               progress: bool = True, max_move_angstrom: float | None = None) -> Rollout:
    """Roll ``network`` out to each of the increasing ``times_ps`` (ps after the start), each interval cut into
    equal steps of at most ``max_dt_ps`` ps, each shortened further where a node would move more than
    ``max_move_angstrom`` (:func:`advance`; None: never); remesh bounds in Angstrom (dislomob.ddd.remesh)."""
    from tqdm import tqdm

    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r}: allowed {', '.join(SCHEMES)}")
    if not (math.isfinite(max_dt_ps) and max_dt_ps > 0):
        raise ValueError(f"dt_ps={max_dt_ps}: allowed a finite value > 0 ps")
    if max_move_angstrom is not None and not (math.isfinite(max_move_angstrom) and max_move_angstrom > 0):
        raise ValueError(f"max_move_angstrom={max_move_angstrom}: allowed a finite value > 0 Angstrom or None")
    check_spacing(min_spacing_angstrom, max_spacing_angstrom, min_nodes)
    times = np.asarray(times_ps, dtype=np.float64)
    gaps = np.diff(np.concatenate([[0.0], times]))
    if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(gaps <= 0):
        raise ValueError(f"times_ps={times.tolist()}: allowed finite, increasing times > 0 ps")
    n_sub = np.maximum(1, np.ceil(gaps / max_dt_ps - TIME_TOL_PS)).astype(int)
    calls = 1 if scheme == "euler" else 2
    net = remesh(dataclasses.replace(network, quad_positions_angstrom=None, quad_segments=None, quad_stress_gpa=None),
                 min_spacing_angstrom, max_spacing_angstrom, min_nodes)
    out = [net]
    lines = network_polylines(net)
    travel = np.zeros((len(lines), 3))
    shifts = [travel.copy()]
    t0 = time.perf_counter()
    taken = 0
    with tqdm(total=int(n_sub.sum()), desc=f"rollout ({scheme})", unit="step", disable=not progress) as bar:
        for gap, n in zip(gaps, n_sub):
            for _ in range(n):
                net, k = advance(law, net, float(gap / n), scheme, max_move_angstrom, min_spacing_angstrom,
                                 max_spacing_angstrom, min_nodes)
                taken += k
                now = network_polylines(net)
                travel = travel + _line_steps(lines, now, net.cell_angstrom)
                lines = now
                bar.update(1)
            out.append(net)
            shifts.append(travel.copy())
    return Rollout(np.concatenate([[0.0], times]), out, taken, calls * taken, time.perf_counter() - t0,
                   np.stack(shifts))


def _line_steps(before: list[Polyline], after: list[Polyline], cell: np.ndarray | None) -> np.ndarray:
    """Displacement (lines, 3) Angstrom of each line across itself between two records of the same lines."""
    if len(before) != len(after):
        raise ValueError(f"the rollout's line count changed from {len(before)} to {len(after)}")
    out = np.zeros((len(before), 3))
    for k, (a, b) in enumerate(zip(before, after)):
        d = _centroid(b) - _centroid(a)
        if cell is not None:
            d = d - np.round(np.linalg.solve(cell.T, d)) @ cell
        out[k] = _normal_part(d, a.period)
    return out


def unwrap_lines(lines: list[Polyline], centroids_angstrom: Sequence[np.ndarray],
                 cell: np.ndarray | None) -> list[Polyline]:
    """Each line moved by the whole cell vector that brings its centroid nearest to ``centroids_angstrom[k]``."""
    if cell is None:
        return list(lines)
    out = []
    for ln, target in zip(lines, centroids_angstrom):
        d = np.asarray(target) - _centroid(ln)
        out.append(translated(ln, np.round(np.linalg.solve(cell.T, d)) @ cell))
    return out


def rollout(law: VelocityLaw, network: DislocationNetwork, dt_ps: float, n_steps: int, min_spacing_angstrom: float,
            max_spacing_angstrom: float, scheme: str = "euler", min_nodes: int = 4, progress: bool = True) -> Rollout:
    """``n_steps`` steps of ``dt_ps`` ps from ``network``; the network after every step (module docstring)."""
    if n_steps < 1:
        raise ValueError(f"n_steps={n_steps}: allowed >= 1")
    return rollout_to(law, network, dt_ps * np.arange(1, n_steps + 1), dt_ps, min_spacing_angstrom,
                      max_spacing_angstrom, scheme, min_nodes, progress)


def spacing_bounds_angstrom(cfg: Config) -> tuple[float, float]:
    """(min, max) remesh spacing (Angstrom) of ``cfg.rollout`` around ``features.node_spacing_nm``."""
    s = 10.0 * cfg.features.node_spacing_nm
    return cfg.rollout.min_spacing_factor * s, cfg.rollout.max_spacing_factor * s


# ---------------------------------------------------------------- against MD

def frame_network(frame: Frame, meta: TrajectoryMeta, cfg: Config) -> DislocationNetwork:
    """The DDD network of an MD frame: DXA lines resampled as featurize does (``features``), b = |b| b_hat with
    b_hat the DXA Burgers direction times ``features.burgers_sign`` and the run's slip plane normal made
    perpendicular to it (``line_frame``, as dislomob.ddd.sanity.record_network), temperature (K), applied stress
    (GPa) and the frame's cell."""
    f = cfg.features
    b_len = float(np.linalg.norm(meta.burgers) * cfg.material.lattice_a_angstrom)
    normal = slip_plane_normal(meta)
    pos, seg, bur, nor = [], [], [], []
    for ln in frame.lines:
        nl = discretize_line(ln, frame.cell, 10.0 * f.node_spacing_nm, f.min_nodes_per_line, f.smoothing_passes,
                             f.burgers_sign)
        n, start = nl.n_nodes, sum(len(p) for p in pos)
        frame_rows = line_frame(nl.burgers, normal)
        pos.append(nl.nodes)
        seg.append(np.column_stack([start + np.arange(n), start + np.roll(np.arange(n), -1)]))
        bur.append(np.tile(b_len * frame_rows[0], (n, 1)))
        nor.append(np.tile(frame_rows[1], (n, 1)))
    return DislocationNetwork(positions_angstrom=np.vstack(pos), segments=np.vstack(seg),
                              burgers_angstrom=np.vstack(bur), normals=np.vstack(nor), temperature_k=meta.temperature_k,
                              applied_stress_gpa=np.asarray(meta.stress_tensor_gpa, dtype=np.float64),
                              cell_angstrom=np.asarray(frame.cell, dtype=np.float64))


def _normal_part(vec: np.ndarray, period: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(period)
    if norm == 0:
        return vec
    t = period / norm
    return vec - (vec @ t) * t


def image_spacing_angstrom(line: Polyline, cell: np.ndarray) -> float:
    """Shortest distance (Angstrom) across a line between it and its own periodic images (lattice vectors from
    the cell rows and their sums/differences, the component along a periodic line's period removed)."""
    rows = list(np.asarray(cell, dtype=np.float64))
    cands = rows + [rows[i] + s * rows[j] for i in range(3) for j in range(i + 1, 3) for s in (1.0, -1.0)]
    lengths = [np.linalg.norm(_normal_part(c, line.period)) for c in cands]
    return float(min(x for x in lengths if x > 1e-6 * max(lengths)))


def _centroid(line: Polyline) -> np.ndarray:
    start, vec = line.segments()
    w = np.linalg.norm(vec, axis=1)
    return ((start + 0.5 * vec) * w[:, None]).sum(axis=0) / w.sum()


@dataclass(frozen=True)
class LineTrack:
    """MD lines followed through frames: ``match[i, k]`` is the index in frame i of the first frame's line k
    (-1 once lost), ``displacement[i, k]`` (Angstrom) its displacement across itself since the first frame,
    unwrapped (NaN once lost); ``half_image_spacing_angstrom``: half the smallest spacing of the first frame's
    lines from their own periodic images (a minimum-image distance folds motions beyond it)."""

    match: np.ndarray
    displacement: np.ndarray
    half_image_spacing_angstrom: float

    def tracked(self) -> np.ndarray:
        """(frames,) True where every line is followed."""
        return np.all(self.match >= 0, axis=1)


def track_md_lines(frames: Sequence[Frame]) -> LineTrack:
    """Follow the first frame's lines frame to frame (same Burgers sense, or any for a closed loop; nearest
    minimum-image centroid; each
    step between frames is small, so the accumulated displacement is unwrapped); lost from the first frame whose
    line count changes or where a line has no partner."""
    first = frame_polylines(frames[0])
    half = 0.5 * min(image_spacing_angstrom(ln, np.asarray(frames[0].cell)) for ln in first)
    b_ref = [ln.spatial_burgers for ln in frames[0].lines]
    centres = [_centroid(ln) for ln in first]
    disp = np.full((len(frames), len(first), 3), math.nan)
    match = np.full((len(frames), len(first)), -1, dtype=np.int64)
    disp[0], match[0] = 0.0, np.arange(len(first))
    for i, fr in enumerate(frames[1:], start=1):
        if len(fr.lines) != len(first):
            break
        lines = frame_polylines(fr)
        cell = np.asarray(fr.cell)
        for k, ref in enumerate(first):
            # a closed loop may come back with the opposite sense and -b (the same loop): any sign matches it
            loop = not np.any(ref.period)
            steps = [(j, _normal_part(_minimum(_centroid(ln) - centres[k], cell), ref.period))
                     for j, ln in enumerate(lines)
                     if loop or float(np.dot(fr.lines[j].spatial_burgers, b_ref[k])) > 0]
            if not steps:
                break
            j, d = min(steps, key=lambda x: np.linalg.norm(x[1]))
            centres[k] = centres[k] + d
            disp[i, k], match[i, k] = disp[i - 1, k] + d, j
        if np.any(match[i] < 0):
            match[i] = -1
            disp[i] = math.nan
            break
    return LineTrack(match, disp, half)


def mean_line_velocities(times_ps: np.ndarray, displacement: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """Each line's mean velocity (k, 3) Angstrom/ps over the tracked frames: the least-squares slope through the
    start of its displacement (frames, k, 3) against time; zeros when no frame is tracked."""
    t = np.asarray(times_ps, dtype=np.float64)[tracked]
    d = np.asarray(displacement, dtype=np.float64)[tracked]
    if not len(t):
        return np.zeros(displacement.shape[1:])
    return np.einsum("f,fkc->kc", t, d) / float(t @ t)


@dataclass(frozen=True)
class LineVelocity:
    """One MD line's mean velocity (Angstrom/ps, crystal frame) and its start height (Angstrom along the cell's z)."""

    height_angstrom: float
    velocity: np.ndarray


def md_line_velocities(trajectory_path: str | Path, cfg: Config, horizon_ps: float | None = None) -> list[LineVelocity]:
    """Each line's mean velocity over the record from ``rollout.start_frame`` (up to ``horizon_ps``, default
    ``rollout.horizon_ps``), in the crystal frame of the start frame, with its height: what a replica's
    rollout floor moves another replica's lines by (:func:`rollout_errors` ``replica_velocities``)."""
    traj = read_trajectory_file(Path(trajectory_path))
    frames, _ = readable_frames(crystal_frames(traj.frames, cfg.rollout.start_frame)[cfg.rollout.start_frame:])
    rel = np.array([fr.time_ps - frames[0].time_ps for fr in frames])
    horizon = float(horizon_ps if horizon_ps is not None else cfg.rollout.horizon_ps)
    keep = [0] + [i for i in range(1, len(frames)) if TIME_TOL_PS < rel[i] <= horizon + TIME_TOL_PS]
    track = track_md_lines([frames[i] for i in keep])
    velocity = mean_line_velocities(rel[keep][1:], track.displacement[1:], track.tracked()[1:])
    return [LineVelocity(float(_centroid(ln)[2]), v) for ln, v in zip(frame_polylines(frames[0]), velocity)]


def matched_velocities(lines: Sequence[Polyline], velocities: Sequence[LineVelocity], cell: np.ndarray) -> list[np.ndarray]:
    """The velocity (Angstrom/ps) of the line in ``velocities`` nearest in height (periodic along the cell's z) to
    each of ``lines``: replicas start from the same configuration, so their lines share heights."""
    if not velocities:
        raise ValueError("matched_velocities: no replica line velocities given: allowed one per line")
    lz = float(cell[2, 2])
    out = []
    for ln in lines:
        z = float(_centroid(ln)[2])
        gap = [abs((z - v.height_angstrom + 0.5 * lz) % lz - 0.5 * lz) for v in velocities]
        out.append(velocities[int(np.argmin(gap))].velocity)
    return out


def _minimum(d: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
    return d if cell is None else d - np.round(np.linalg.solve(cell.T, d)) @ cell


def md_travel_angstrom(frames: Sequence[Frame]) -> tuple[np.ndarray, float]:
    """(largest travel (k,) Angstrom of any line since ``frames[0]`` at every frame, NaN once lines are lost;
    half the smallest image spacing, Angstrom) from :func:`track_md_lines`."""
    track = track_md_lines(frames)
    return np.linalg.norm(track.displacement, axis=2).max(axis=1), track.half_image_spacing_angstrom


def _overlay_indices(n: int, count: int) -> list[int]:
    """``count`` indices spread over 1..n (the last one included)."""
    if n < 1 or count < 1:
        return []
    return sorted({int(round(x)) for x in np.linspace(n / count, n, count)})


def _json_list(values: np.ndarray) -> list[float | None]:
    """Floats of ``values`` with NaN as None (strict JSON)."""
    return [float(v) if math.isfinite(v) else None for v in values]


def _coords(lines: list[Polyline], cell: np.ndarray) -> list[list[list[float]]]:
    return [centred(ln, cell).closed_points().tolist() for ln in lines]


def rollout_errors(laws: Mapping[str, VelocityLaw], trajectory_path: str | Path, cfg: Config,
                   horizon_ps: float | None = None, dt_ps: float | None = None,
                   progress: bool = True,
                   replica_velocities: Mapping[str, Sequence[LineVelocity]] | None = None) -> dict[str, Any]:
    """Rollout error against the MD of one trajectory file (.h5) for each named law (module docstring).

    From frame ``rollout.start_frame``, every law is rolled out (``rollout.scheme``, steps of at most ``dt_ps``,
    default ``rollout.dt_ps``) to the MD frame times up to ``horizon_ps`` (default ``rollout.horizon_ps``, capped
    by the frames the file holds: ``available_ps`` says how much). Distances are unwrapped
    (:func:`dislomob.ddd.line_distance.unwrapped_line_distance`): MD and rollout lines are each followed through
    time and taken at the periodic image they reached, so motions longer than half the cell count in full.
    Returns JSON-ready lists over the compared times: ``times_ps`` (after the start frame),
    ``md_distance_angstrom`` (no-motion distance d(MD(0), MD(t))), ``md_travel_angstrom``, ``tracked`` (the MD
    lines could be followed; else None values), ``tracked_horizon_ps``, ``rigid_relative_error`` (the error of
    moving each MD start line rigidly by its own MD displacement: the floor that DXA noise and line-shape
    fluctuations leave any law), ``mean_law_relative_error`` (each MD start line moved by its mean velocity over
    the record times t: the mean-law floor over time, what a perfect deterministic law would score),
    ``replica_relative_error`` (only with ``replica_velocities``: per named replica, each MD start line moved at
    that replica's mean velocity of the line at its height, :func:`md_line_velocities`; the replica floor over
    time), ``start_distance_angstrom`` (the resampled start frame against its own DXA
    lines), and per law ``distance_angstrom``, ``relative_error``, ``n_nodes``, the cost (``wall_s_per_step``,
    ``law_calls``); ``overlay``: MD and rollout line coordinates (closed polylines, Angstrom, each line moved
    into the cell) at ``rollout.overlay_snapshots`` times."""
    rc = cfg.rollout
    path = Path(trajectory_path)
    traj = read_trajectory_file(path)
    if rc.start_frame >= len(traj.frames) - 1:
        raise ValueError(f"rollout.start_frame={rc.start_frame}: {path} has {len(traj.frames)} frame(s); allowed "
                         f"0..{len(traj.frames) - 2} (a later frame is needed to compare with)")
    frames, skipped = readable_frames(crystal_frames(traj.frames, rc.start_frame)[rc.start_frame:])
    if len(frames) < 2:
        raise DiscretizationError(f"{path}: fewer than 2 frames from rollout.start_frame={rc.start_frame} have lines "
                                  f"a rollout can start from or be compared with ({len(skipped)} skipped: "
                                  f"{next(iter(skipped.values()), '')})")
    t0 = frames[0].time_ps
    rel_times = np.round([fr.time_ps - t0 for fr in frames], 9)
    available = float(rel_times[-1])
    horizon = min(float(horizon_ps if horizon_ps is not None else rc.horizon_ps), available)
    if not horizon > 0:
        raise ValueError(f"horizon_ps={horizon_ps}: allowed > 0 ps")
    keep = np.flatnonzero((rel_times > TIME_TOL_PS) & (rel_times <= horizon + TIME_TOL_PS))
    used = [frames[k] for k in keep]
    times = rel_times[keep]
    cells = [np.asarray(fr.cell, dtype=np.float64) for fr in used]
    md0 = frame_polylines(frames[0])
    c0 = [_centroid(ln) for ln in md0]
    track = track_md_lines([frames[0]] + used)
    ok = track.tracked()[1:]
    md: list[list[Polyline] | None] = []
    for i, fr in enumerate(used, start=1):
        if not ok[i - 1]:
            md.append(None)
            continue
        lines = frame_polylines(fr)
        md.append(unwrap_lines([lines[j] for j in track.match[i]], [c + d for c, d in zip(c0, track.displacement[i])],
                               cells[i - 1]))
    spacing_a = rc.sample_spacing_angstrom

    def distances(sets: list[list[Polyline] | None]) -> np.ndarray:
        return np.array([unwrapped_line_distance(a, m, spacing_a) if m is not None and a is not None else math.nan
                         for a, m in zip(sets, md)])

    still = distances([md0] * len(md))
    rigid = distances([[translated(ln, d) for ln, d in zip(md0, track.displacement[i])] if ok[i - 1] else None
                       for i in range(1, len(md) + 1)])
    velocity = mean_line_velocities(times, track.displacement[1:], ok)
    mean_law = distances([[translated(ln, v * t) for ln, v in zip(md0, velocity)] if ok[i - 1] else None
                          for i, t in enumerate(times, start=1)])
    start = frame_network(frames[0], traj.meta, cfg)
    lo, hi = spacing_bounds_angstrom(cfg)
    step_dt = float(dt_ps if dt_ps is not None else rc.dt_ps)
    shown = [i for i in _overlay_indices(len(times), rc.overlay_snapshots) if md[i - 1] is not None]
    meta = traj.meta
    out: dict[str, Any] = {
        "traj_id": path.stem, "temperature_k": meta.temperature_k, "stress_gpa": meta.stress_gpa,
        "angle_deg": meta.angle_deg, "bucket": "loop" if meta.geometry == "loop" else bucket_of(meta.angle_deg),
        "start_frame": rc.start_frame,
        "skipped_frames": {f"{t:.4g} ps": why for t, why in skipped.items()},
        "start_time_ps": t0, "frame_spacing_ps": float(np.median(np.diff(rel_times))), "available_ps": available,
        "horizon_ps": horizon, "dt_ps": step_dt, "scheme": rc.scheme, "min_spacing_angstrom": lo,
        "max_spacing_angstrom": hi, "times_ps": times.tolist(), "md_distance_angstrom": _json_list(still),
        "md_travel_angstrom": _json_list(np.linalg.norm(track.displacement[1:], axis=2).max(axis=1)),
        "half_image_spacing_angstrom": track.half_image_spacing_angstrom,
        "tracked": ok.tolist(), "tracked_horizon_ps": _tracked_horizon_ps(times, ok),
        "rigid_relative_error": _json_list(rigid / np.maximum(still, 1e-12)),
        "mean_law_relative_error": _json_list(mean_law / np.maximum(still, 1e-12)),
        **({"replica_relative_error": {
            name: _json_list(distances([[translated(ln, v * t) for ln, v in zip(md0, matched_velocities(md0, vel, cells[0]))]
                                        if ok[i - 1] else None for i, t in enumerate(times, start=1)])
                             / np.maximum(still, 1e-12))
            for name, vel in replica_velocities.items()}} if replica_velocities else {}),
        "start_distance_angstrom": line_distance(network_polylines(start), md0, np.asarray(frames[0].cell),
                                                 spacing_a),
        "laws": {},
        "overlay": {"times_ps": [float(times[i - 1]) for i in shown],
                    "md": [_coords(md[i - 1], cells[i - 1]) for i in shown]},
    }
    for name, law in laws.items():
        ro = rollout_to(law, start, times, step_dt, lo, hi, rc.scheme, max(4, cfg.features.min_nodes_per_line),
                        progress, rc.max_move_angstrom)
        ro0 = [_centroid(ln) for ln in network_polylines(ro.networks[0])]
        anchor = [c + _minimum(r - c, ro.networks[0].cell_angstrom) for c, r in zip(c0, ro0)]  # at MD0's image
        lines = [unwrap_lines(network_polylines(net), [a + d for a, d in zip(anchor, ro.line_displacements[i])],
                              net.cell_angstrom) for i, net in enumerate(ro.networks) if i > 0]
        dist = distances(lines)
        out["laws"][name] = {
            "distance_angstrom": _json_list(dist), "relative_error": _json_list(dist / np.maximum(still, 1e-12)),
            "n_nodes": [n.n_nodes for n in ro.networks[1:]],
            "n_steps": ro.n_steps, "law_calls": ro.n_law_calls,
            "wall_s": ro.wall_s, "wall_s_per_step": ro.wall_s / max(1, ro.n_steps),
        }
        out["overlay"][name] = [_coords(lines[i - 1], cells[i - 1]) for i in shown]
    return out


def readable_frames(frames: Sequence[Frame]) -> tuple[list[Frame], dict[float, str]]:
    """The frames whose DXA lines are closed or periodic polylines, and the time (ps) and reason of every other
    frame (e.g. an open line that DXA left in a frame): such a frame is left out, the rest goes on."""
    ok, skipped = [], {}
    for fr in frames:
        try:
            frame_polylines(fr)
        except DiscretizationError as err:
            skipped[float(fr.time_ps)] = str(err)
            continue
        ok.append(fr)
    return ok, skipped


def _tracked_horizon_ps(times: np.ndarray, tracked: np.ndarray) -> float:
    """The last compared time (ps) before the MD lines are first lost (0 if at once)."""
    lost = np.flatnonzero(~tracked)
    last = len(times) if lost.size == 0 else int(lost[0])
    return float(times[last - 1]) if last > 0 else 0.0


def rollout_summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per law and character bucket, over :func:`rollout_errors` results: the common times (ps), the median
    relative error across trajectories at each time (None where no trajectory has one), the number of
    trajectories and the longest horizon (ps) over which every one of them keeps its MD lines tracked."""
    out: dict[str, Any] = {}
    buckets = sorted({r["bucket"] for r in results})
    for name in sorted({n for r in results for n in r["laws"]}):
        out[name] = {}
        for bucket in buckets:
            runs = [r for r in results if r["bucket"] == bucket and name in r["laws"]]
            n = min(len(r["times_ps"]) for r in runs)
            errs = np.array([[math.nan if e is None else e for e in r["laws"][name]["relative_error"][:n]]
                             for r in runs], dtype=np.float64)
            med = [float(np.nanmedian(col)) if np.any(np.isfinite(col)) else None for col in errs.T]
            out[name][bucket] = {"times_ps": list(runs[0]["times_ps"][:n]), "median_relative_error": med,
                                 "n_trajectories": len(runs),
                                 "tracked_horizon_ps": float(min(r["tracked_horizon_ps"] for r in runs))}
    return out
