"""Analytic dislocation graphs in the graph_schema layout for model, loss and training tests.

Straight periodic lines and circular loops in a glide plane, moved one step by a known mobility
law (glide velocity = mobility(character) * resolved Peach-Koehler force). Lengths in Angstrom,
stress in GPa, time in ps, temperature in K. The model computes its inputs from the Cartesian
stress, frames and geometry stored here (dislomob.features.invariants).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from dislomob import graph_schema as S

B_HAT = np.array([1.0, 0.0, 0.0])
N_HAT = np.array([0.0, 0.0, 1.0])
FRAME = np.stack([B_HAT, N_HAT, np.cross(B_HAT, N_HAT)])  # rows b_hat, n_hat, s_hat
MOBILITY_EDGE = 8.0  # Angstrom / ps / GPa
MOBILITY_SCREW = 1.5



@pytest.fixture(autouse=True)
def torch_one_thread():
    """Run torch on one thread: the test machine's two cores are shared with MD runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


Line = tuple[np.ndarray, np.ndarray]  # (nodes (n,3), period (3,); zero period = closed loop)


def tangent_dir(angle_deg: float, frame: np.ndarray = FRAME) -> np.ndarray:
    """Unit line direction at character angle ``angle_deg`` from b_hat, in the glide plane."""
    a = np.radians(angle_deg)
    return np.cos(a) * frame[0] + np.sin(a) * frame[2]


def glide_cell(angle_deg: float, length: float = 40.0, width: float = 60.0, height: float = 80.0,
               frame: np.ndarray = FRAME) -> np.ndarray:
    """Orthogonal cell (rows, Angstrom): glide direction x width, line direction x length, normal x height."""
    xi = tangent_dir(angle_deg, frame)
    return np.stack([width * np.cross(frame[1], xi), length * xi, height * frame[1]])


def straight_line(cell: np.ndarray, n: int, origin: np.ndarray, wiggle: float = 0.0) -> Line:
    """A periodic line along cell row 1 through ``origin`` with ``n`` nodes; ``wiggle`` Angstrom of sine in row 0."""
    s = np.arange(n) / n
    glide = cell[0] / np.linalg.norm(cell[0])
    nodes = origin[None] + s[:, None] * cell[1][None] + wiggle * np.sin(2 * np.pi * s)[:, None] * glide[None]
    return nodes, cell[1].copy()


def circle(radius: float, n: int, center: np.ndarray, frame: np.ndarray = FRAME) -> Line:
    """A closed loop of ``n`` nodes in the glide plane of ``frame`` (counter-clockwise about n_hat)."""
    a = 2 * np.pi * np.arange(n) / n
    nodes = center[None] + radius * (np.cos(a)[:, None] * frame[0] + np.sin(a)[:, None] * frame[2])
    return nodes, np.zeros(3)


def _segments(line: Line) -> tuple[np.ndarray, np.ndarray]:
    nodes, period = line
    ends = np.roll(nodes, -1, axis=0)
    ends[-1] = ends[-1] + period
    return nodes, ends


def node_tangents(line: Line) -> np.ndarray:
    """Unit tangents (n,3) at the nodes: direction from the previous to the next node."""
    nodes, period = line
    nxt = np.roll(nodes, -1, axis=0)
    nxt[-1] += period
    prv = np.roll(nodes, 1, axis=0)
    prv[0] -= period
    t = nxt - prv
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def law_velocity(line: Line, frame: np.ndarray, stress_gpa: np.ndarray, temperature_k: float) -> np.ndarray:
    """Nodal glide velocity (n,3) Angstrom/ps of the test law: mobility(theta, T) * ((sigma b_hat) x xi)_glide."""
    xi = node_tangents(line)
    f = np.cross((stress_gpa @ frame[0])[None], xi)
    f -= np.outer(f @ frame[1], frame[1])
    cos2 = (xi @ frame[0]) ** 2
    mobility = (MOBILITY_SCREW * cos2 + MOBILITY_EDGE * (1 - cos2)) * (300.0 / temperature_k)
    return mobility[:, None] * f


def moved(line: Line, frame: np.ndarray, stress_gpa: np.ndarray, temperature_k: float, dt_ps: float) -> Line:
    """The line after one step of the test law."""
    nodes, period = line
    return nodes + dt_ps * law_velocity(line, frame, stress_gpa, temperature_k), period


def _min_image(v: np.ndarray, cell: np.ndarray) -> np.ndarray:
    return v - np.rint(v @ np.linalg.inv(cell)) @ cell


def closest_vectors(points: np.ndarray, lines: list[Line], cell: np.ndarray) -> np.ndarray:
    """Shortest minimum-image vector (n,3) from each point to the union of polylines."""
    starts = np.vstack([_segments(ln)[0] for ln in lines])
    ends = np.vstack([_segments(ln)[1] for ln in lines])
    e = ends - starts
    d0 = _min_image(starts[None] - points[:, None], cell)
    u = np.clip(-np.einsum("psk,sk->ps", d0, e) / np.einsum("sk,sk->s", e, e), 0, 1)
    v = d0 + u[..., None] * e[None]
    return v[np.arange(len(points)), np.argmin((v * v).sum(-1), axis=1)]


def _seg_index(lines: list[Line]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src, dst, shift, off = [], [], [], 0
    for nodes, period in lines:
        n = len(nodes)
        idx = np.arange(n) + off
        src.append(idx)
        dst.append(np.roll(idx, -1))
        sh = np.zeros((n, 3))
        sh[-1] = period
        shift.append(sh)
        off += n
    return np.concatenate(src), np.concatenate(dst), np.vstack(shift)


def line_graph(lines: list[Line], later: list[Line], cell: np.ndarray, stress_gpa: np.ndarray,
               temperature_k: float, frame: np.ndarray = FRAME, dt_ps: float = 1.0, traj_id: str = "t0",
               angle_deg: float = 90.0, frame_index: int = 0, n_gauss: int = 2) -> HeteroData:
    """One graph_schema HeteroData of ``lines`` at t and ``later`` at t + dt (all lines share ``frame``)."""
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    i64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)  # noqa: E731
    src, dst, shift = _seg_index(lines)
    pos = np.vstack([ln[0] for ln in lines])
    starts, ends = pos[src], pos[dst] + shift
    seg = ends - starts
    gl = (np.arange(n_gauss) + 0.5) / n_gauss
    gp_seg = np.repeat(np.arange(len(src)), n_gauss)
    gp_pos = starts[gp_seg] + np.tile(gl, len(src))[:, None] * seg[gp_seg]
    loc = frame @ stress_gpa @ frame.T
    disp = closest_vectors(pos, later, cell)
    t_src, t_dst, t_shift = _seg_index(later)
    gp_idx = np.arange(len(gp_seg))
    g = HeteroData()
    g[S.NODE].pos = f32(pos)
    g[S.NODE].frame = f32(np.repeat(frame[None], len(pos), axis=0))
    g[S.NODE].y = f32(disp @ frame.T)
    g[S.NODE].temperature_k = f32(np.full(len(pos), temperature_k))
    g[S.GP].pos = f32(gp_pos)
    g[S.GP].stress_gpa = f32(np.repeat(stress_gpa[None], len(gp_seg), axis=0))
    g[S.GP].segment = i64(gp_seg)
    g[S.TARGET].pos = f32(np.vstack([ln[0] for ln in later]))
    g[S.GP_TO_NODE].edge_index = i64(np.stack([np.concatenate([gp_idx, gp_idx]),
                                               np.concatenate([src[gp_seg], dst[gp_seg]])]))
    g[S.NODE_TO_GP].edge_index = g[S.GP_TO_NODE].edge_index.flip(0)
    g[S.NODE_SEG].edge_index, g[S.NODE_SEG].shift = i64(np.stack([src, dst])), f32(shift)
    g[S.TARGET_SEG].edge_index, g[S.TARGET_SEG].shift = i64(np.stack([t_src, t_dst])), f32(t_shift)
    g.cell = f32(cell[None])
    g.pbc = torch.ones(1, 3, dtype=torch.bool)
    g.dt_ps, g.temperature_k = f32([dt_ps]), f32([temperature_k])
    g.angle_deg, g.stress_gpa = f32([angle_deg]), f32([abs(loc[0, 1])])
    g.traj_id, g.frame_index = traj_id, frame_index
    return g


def shear_stress(tau_gpa: float, frame: np.ndarray = FRAME) -> np.ndarray:
    """Cartesian stress (GPa) with resolved shear tau on the (b_hat, n_hat) system of ``frame``."""
    loc = np.zeros((3, 3))
    loc[0, 1] = loc[1, 0] = tau_gpa
    return frame.T @ loc @ frame


def straight_graph(angle_deg: float, tau_gpa: float, temperature_k: float, n: int = 6, wiggle: float = 0.0,
                 frame: np.ndarray = FRAME, dt_ps: float = 1.0, traj_id: str = "t0", frame_index: int = 0,
                 rotation: np.ndarray | None = None, translation: np.ndarray | None = None) -> HeteroData:
    """A straight (or wavy) periodic line at character ``angle_deg`` moved one step by the test law.

    ``rotation`` (3,3) and ``translation`` (3,) Angstrom rigidly move the whole configuration.
    """
    rot = np.eye(3) if rotation is None else np.asarray(rotation)
    shift = np.zeros(3) if translation is None else np.asarray(translation)
    fr = frame @ rot.T
    cell = glide_cell(angle_deg, frame=frame) @ rot.T
    stress = rot @ shear_stress(tau_gpa, frame) @ rot.T
    origin = np.array([5.0, 1.0, 20.0]) @ rot.T + shift
    line = straight_line(cell, n, origin, wiggle)
    later = moved(line, fr, stress, temperature_k, dt_ps)
    return line_graph([line], [later], cell, stress, temperature_k, fr, dt_ps, traj_id, angle_deg, frame_index)


def loop_graph(radius: float, tau_gpa: float, temperature_k: float, n: int = 12, dt_ps: float = 1.0,
               traj_id: str = "loop") -> HeteroData:
    """A circular shear loop (all characters) expanded one step by the test law."""
    cell = np.diag([4 * radius, 4 * radius, 60.0])
    line = circle(radius, n, np.array([2 * radius, 2 * radius, 30.0]))
    stress = shear_stress(tau_gpa)
    return line_graph([line], [moved(line, FRAME, stress, temperature_k, dt_ps)], cell, stress, temperature_k,
                      FRAME, dt_ps, traj_id, 90.0)


def random_rotation(seed: int) -> np.ndarray:
    """A random proper rotation matrix."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))[None]
    return q if np.linalg.det(q) > 0 else -q


def graph_record(g: HeteroData) -> dict:
    """The graph-file record (dislomob.features.graphs format) of a graph made by :func:`line_graph`."""
    edges = {}
    for et in (S.GP_TO_NODE, S.NODE_TO_GP, S.NODE_SEG, S.TARGET_SEG):
        key = "__".join(et)
        edges[key] = g[et].edge_index
        if "shift" in g[et]:
            edges[key + "_shift"] = g[et].shift
    graph = {k: g[k] for k in ("cell", "pbc", "dt_ps", "temperature_k", "angle_deg", "stress_gpa", "traj_id",
                               "frame_index")}
    graph["n_gauss"] = int(len(g[S.GP].segment) // g[S.NODE_SEG].edge_index.shape[1])
    graph["time_ps"] = float(g.frame_index) * float(g.dt_ps)
    return {S.NODE: dict(g[S.NODE].items()), S.GP: dict(g[S.GP].items()), S.TARGET: dict(g[S.TARGET].items()),
            "edges": edges, "graph": graph}


def trajectory_graphs(traj_id: str, angle_deg: float, tau_gpa: float, temperature_k: float, n_frames: int = 3,
                      n: int = 6, dt_ps: float = 1.0) -> list[HeteroData]:
    """Consecutive graphs of one wavy line moving under the test law (a synthetic trajectory)."""
    out = []
    for k in range(n_frames):
        out.append(straight_graph(angle_deg, tau_gpa, temperature_k, n=n, wiggle=1.0 + 0.3 * k, dt_ps=dt_ps,
                                  traj_id=traj_id, frame_index=k,
                                  translation=np.array([0.0, 0.0, 0.0]) + k * 0.5 * tangent_dir(angle_deg + 90.0)))
    return out


def write_model_dir(graphs: dict[str, list[HeteroData]], split: dict[str, list[str]], graphs_dir, model_dir,
                    seed: int) -> None:
    """Graph files (one per trajectory) and an untrained 4-member ensemble file with its split, as the train stage
    leaves them: ``<model_dir>/ensemble.pt`` (scales fitted on the training trajectories) and ``split.json``."""
    from pathlib import Path

    from dislomob.atomic import write_json
    from dislomob.features.graphs import save_graphs
    from dislomob.features.invariants import graph_features
    from dislomob.model.ensemble import save_ensemble, select_top
    from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams

    for t, gs in graphs.items():
        save_graphs(Path(graphs_dir) / f"{t}.pt", [graph_record(g) for g in gs], {"traj": t})
    model = EnsemblePIGNN(PIGNNHParams(members=4, width=4, depth=1, seed=seed))
    feats = [graph_features(g) for t in split["train"] for g in graphs[t]]
    model.fit_scales(torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats]), 1.0, 0.5)
    select_top(model, torch.tensor([1.0, 2.0, 0.5, 3.0]), 0.5)
    save_ensemble(model, Path(model_dir) / "ensemble.pt", {"split": split, "seed": 0})
    write_json(Path(model_dir) / "split.json", split)
