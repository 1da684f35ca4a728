"""One dislocation snapshot -> one heterogeneous graph (layout in dislomob.graph_schema).

Nodes and Gauss points (GPs) of resampled lines; the stress at GPs is the non-singular elastic
stress of the periodic network (GPa) plus the applied stress; features are expressed in each
line's local frame (b_hat, n_hat, s_hat). Graph files hold plain tensors (safe to load with
``torch.load(weights_only=True)``) and are rebuilt into ``HeteroData`` by :func:`load_graphs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData

from dislomob import graph_schema as S
from dislomob.atomic import save_torch
from dislomob.features.discretize import NodeLine, gauss_points
from dislomob.features.local_frame import line_frame, to_local
from dislomob.features.periodic import mean_image_stress, network_stress
from dislomob.features.stress import DEFAULT_MAX_PAIRS
from dislomob.features.targets import (
    Track, closest_displacements, image_shift, match_lines, minimum_image, unwrapped_displacements,
)

GRAPH_FORMAT_VERSION = 2  # 2: no stored features (the model computes invariants from stress and geometry)


@dataclass(frozen=True)
class StressSettings:
    """Elastic constants (GPa), core width (Angstrom), image counts and chunk size for the GP stress."""

    mu_gpa: float
    nu: float
    core_width_angstrom: float
    images: int = 4
    line_images: int = 2
    remove_mean: bool = True
    max_pairs: int = DEFAULT_MAX_PAIRS


@dataclass(frozen=True)
class Snapshot:
    """Nodes, segments and GPs of one frame with their stress (GPa) and local frames (model inputs are
    computed from these by dislomob.features.invariants)."""

    lines: list[NodeLine]
    node_pos: np.ndarray
    node_frame: np.ndarray
    seg_src: np.ndarray
    seg_dst: np.ndarray
    seg_shift: np.ndarray
    gp_pos: np.ndarray
    gp_seg: np.ndarray
    gp_stress_gpa: np.ndarray


def _segments(lines: list[NodeLine]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    src, dst, shift, starts, ends, line_of = [], [], [], [], [], []
    offset = 0
    for k, ln in enumerate(lines):
        n = ln.n_nodes
        s, e, sh = ln.segment_ends()
        idx = np.arange(n) + offset
        src.append(idx)
        dst.append(np.roll(idx, -1))
        shift.append(sh)
        starts.append(s)
        ends.append(e)
        line_of.append(np.full(n, k))
        offset += n
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros((0,))  # noqa: E731
    return cat(src), cat(dst), np.vstack(shift), np.vstack(starts), np.vstack(ends), cat(line_of)


def snapshot(lines: list[NodeLine], cell: np.ndarray, applied_stress_gpa: np.ndarray, plane_normal: np.ndarray,
             temperature_k: float, n_gauss: int, settings: StressSettings) -> Snapshot:
    """Resampled lines of one frame -> nodes, segments, GPs and GP stress (GPa)."""
    if not lines:
        raise ValueError("a snapshot needs at least one line")
    cell = np.asarray(cell, dtype=np.float64)
    src, dst, shift, starts, ends, seg_line = _segments(lines)
    node_pos = np.vstack([ln.nodes for ln in lines])
    line_frames = np.stack([line_frame(ln.burgers, plane_normal) for ln in lines])
    node_frame = line_frames[seg_line]  # segment i starts at node i: same line
    gps = gauss_points(starts, ends, n_gauss)
    a = settings.core_width_angstrom
    internal = network_stress(gps.pos, lines, cell, settings.mu_gpa, settings.nu, a, settings.images,
                              settings.line_images, settings.max_pairs)
    if settings.remove_mean:
        # NPT holds the cell-averaged stress at the applied value: the dislocations' mean is removed
        internal -= mean_image_stress(lines, cell, settings.mu_gpa, settings.nu, a, settings.images,
                                      settings.line_images, settings.max_pairs)[None]
    stress = internal + np.asarray(applied_stress_gpa, dtype=np.float64)[None]
    return Snapshot(lines, node_pos, node_frame, src, dst, shift, gps.pos, gps.segment, stress)


def targets(snap: Snapshot, later: list[NodeLine], cell: np.ndarray,
            track: Track | None = None) -> tuple[np.ndarray, list[NodeLine]]:
    """(node displacements (n,3) Cartesian Angstrom, matched later lines shifted next to their origin).

    Without ``track`` each later line is matched and taken at its nearest periodic image; with a
    :class:`Track` (lines followed through the frames between, dislomob.features.targets) at the image
    its accumulated path reaches, so a line faster than half the cell per dt moves forwards.
    """
    cell = np.asarray(cell, dtype=np.float64)
    match = track.match if track is not None else match_lines(snap.lines, later, cell)
    disp, moved = [], []
    for k, (ln, j) in enumerate(zip(snap.lines, match)):
        if track is None:
            disp.append(closest_displacements(ln.nodes, later[j], cell))
        else:
            disp.append(unwrapped_displacements(ln.nodes, later[j], cell, track.shift[k]))
    for j in sorted(set(match)):
        k = match.index(j)
        d = later[j].nodes[0] - snap.lines[k].nodes[0]
        shift = minimum_image(d, cell) - d
        lt = later[j]
        if track is not None:  # the image the unwrapped displacements reach
            shift = shift + image_shift(lt.nodes + shift, snap.lines[k].nodes + disp[k], cell, lt.period_axis)
        moved.append(NodeLine(lt.nodes + shift, lt.burgers, lt.period, lt.period_axis))
    return np.vstack(disp), moved


def to_record(snap: Snapshot, disp: np.ndarray, later: list[NodeLine], cell: np.ndarray, info: dict[str, Any],
              dtype: torch.dtype = torch.float32) -> dict:
    """A graph as a dict of plain tensors (the file format); ``info`` holds graph-level values; real numbers
    in ``dtype`` (float32 in graph files; float64 for DDD networks, dislomob.ddd.network_graph)."""
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    i64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)  # noqa: E731
    n_gauss = len(snap.gp_seg) // len(snap.seg_src)
    gp_idx = np.arange(len(snap.gp_seg))
    gp_src = np.concatenate([gp_idx, gp_idx])
    gp_dst = np.concatenate([snap.seg_src[snap.gp_seg], snap.seg_dst[snap.gp_seg]])
    t_src, t_dst, t_shift, _, _, _ = _segments(later)
    n_node = len(snap.node_pos)
    return {
        S.NODE: {"pos": f32(snap.node_pos), "frame": f32(snap.node_frame),
                 "y": f32(to_local(snap.node_frame, disp)), "temperature_k": f32(np.full(n_node, info["temperature_k"]))},
        S.GP: {"pos": f32(snap.gp_pos), "stress_gpa": f32(snap.gp_stress_gpa),
               "segment": i64(snap.gp_seg)},
        S.TARGET: {"pos": f32(np.vstack([ln.nodes for ln in later]))},
        "edges": {
            "gp__to__node": i64(np.stack([gp_src, gp_dst])),
            "node__to__gp": i64(np.stack([gp_dst, gp_src])),
            "node__seg__node": i64(np.stack([snap.seg_src, snap.seg_dst])),
            "node__seg__node_shift": f32(snap.seg_shift),
            "target__seg__target": i64(np.stack([t_src, t_dst])),
            "target__seg__target_shift": f32(t_shift),
        },
        "graph": {
            "cell": f32(np.asarray(cell)[None]), "pbc": torch.ones(1, 3, dtype=torch.bool),
            "dt_ps": f32([info["dt_ps"]]), "temperature_k": f32([info["temperature_k"]]),
            "angle_deg": f32([info["angle_deg"]]), "stress_gpa": f32([info["stress_gpa"]]),
            "n_gauss": int(n_gauss), "traj_id": str(info["traj_id"]), "frame_index": int(info["frame_index"]),
            "time_ps": float(info["time_ps"]),
        },
    }


def to_heterodata(rec: dict) -> HeteroData:
    """Rebuild the ``HeteroData`` of graph_schema from a stored record."""
    g = HeteroData()
    for vt in (S.NODE, S.GP, S.TARGET):
        for k, v in rec[vt].items():
            g[vt][k] = v
    edges = rec["edges"]
    for et in (S.GP_TO_NODE, S.NODE_TO_GP, S.NODE_SEG, S.TARGET_SEG):
        key = "__".join(et)
        g[et].edge_index = edges[key]
        if key + "_shift" in edges:
            g[et].shift = edges[key + "_shift"]
    for k, v in rec["graph"].items():
        g[k] = v
    return g


def save_graphs(path: str | Path, records: list[dict], meta: dict[str, Any]) -> bool:
    """Write graph records and metadata atomically to a ``.pt`` file (plain tensors only).

    Identical content gives identical bytes (no timings, no temporary name inside); a file that already
    holds them is left untouched. Returns True when the file was written.
    """
    return save_torch(path, {"format_version": GRAPH_FORMAT_VERSION, "meta": meta, "graphs": records})


def read_graph_file(path: str | Path) -> dict:
    """The raw contents of a graph file: format_version, meta, graphs (records).

    A missing, empty, truncated or foreign file raises InputFileError naming the file (one line).
    """
    from dislomob.errors import InputFileError

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"graph file {p} not found")
    try:
        data = torch.load(p, weights_only=True)
    except Exception as err:  # torch/pickle/zip raise OSError, EOFError, KeyError, RuntimeError, ... on junk
        what = " ".join(str(err).split())[:200]
        size = p.stat().st_size
        raise InputFileError(f"{p}: unreadable graph file ({size} bytes; {type(err).__name__}: {what}); "
                             "rerun `dislomob featurize`") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != GRAPH_FORMAT_VERSION:
        raise InputFileError(f"{p}: graph format_version {version} != {GRAPH_FORMAT_VERSION}; rerun `dislomob featurize`")
    if not isinstance(data.get("graphs"), list) or not isinstance(data.get("meta"), dict):
        raise InputFileError(f"{p}: not a graph file (no graphs list / meta mapping); rerun `dislomob featurize`")
    return data


def load_graphs(path: str | Path) -> list[HeteroData]:
    """All graphs of a file as ``HeteroData`` objects (graph_schema layout); damaged records name the file."""
    from dislomob.errors import InputFileError

    recs = read_graph_file(path)["graphs"]
    try:
        return [to_heterodata(r) for r in recs]
    except Exception as err:
        raise InputFileError(f"{path}: damaged graph record ({type(err).__name__}: {err}); "
                             "rerun `dislomob featurize`") from None
