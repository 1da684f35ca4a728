"""The featurize stage: trajectory files (data/md/*.h5) -> graph files (data/graphs/*.pt) + summary.

Each frame at time t whose successor at t + dt exists becomes one graph. A frame is skipped, with
the reason recorded, when its line count differs from its successor's (annihilation), when a line
cannot be resampled (open line, unresolvable periodic closure) or matched at t + dt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dislomob.atomic import write_json
from dislomob.config import Config, FeaturesConfig
from dislomob.features.discretize import DiscretizationError, NodeLine, discretize_line
from dislomob.features.graphs import (
    GRAPH_FORMAT_VERSION, StressSettings, read_graph_file, save_graphs, snapshot, targets, to_record,
)
from dislomob.features.local_frame import GP_FEATURE_NAMES, NODE_FEATURE_NAMES
from dislomob.features.targets import MatchError
from dislomob.md.trajectory import Frame, Trajectory, TrajectoryMeta, read_trajectory


@dataclass
class FeaturizeResult:
    """Graph records of one trajectory, skipped frames with reasons, and a Peach-Koehler sign check."""

    records: list[dict] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    pk_agree: int = 0
    pk_total: int = 0


def slip_plane_normal(meta: TrajectoryMeta) -> np.ndarray:
    """Unit slip plane normal in the box frame from the crystal-frame plane normal and rotation."""
    n = np.asarray(meta.rotation, dtype=np.float64) @ np.asarray(meta.plane_normal, dtype=np.float64)
    return n / np.linalg.norm(n)


def stress_settings(cfg: Config, burgers_length_angstrom: float) -> StressSettings:
    """StressSettings from the material and features config; core width = core_width_b * |b|."""
    f = cfg.features
    return StressSettings(cfg.material.shear_modulus_gpa, cfg.material.poisson_ratio,
                          f.core_width_b * burgers_length_angstrom, f.images, f.line_images, f.remove_mean_stress)


def _discretize(frame: Frame, f: FeaturesConfig) -> list[NodeLine]:
    return [discretize_line(ln, frame.cell, 10.0 * f.node_spacing_nm, f.min_nodes_per_line, f.smoothing_passes,
                            f.burgers_sign) for ln in frame.lines]


def _successor(times: np.ndarray, i: int, dt_ps: float) -> int | None:
    want = times[i] + dt_ps
    j = int(np.argmin(np.abs(times - want)))
    spacing = np.min(np.diff(times)) if len(times) > 1 else dt_ps
    return j if j > i and abs(times[j] - want) <= 0.25 * spacing else None


def featurize_trajectory(traj: Trajectory, cfg: Config, traj_id: str) -> FeaturizeResult:
    """All graphs of one trajectory (records of plain tensors) and the frames skipped, with reasons."""
    f = cfg.features
    meta = traj.meta
    res = FeaturizeResult()
    if not traj.frames:
        return res
    normal = slip_plane_normal(meta)
    applied = np.asarray(meta.stress_tensor_gpa, dtype=np.float64)
    times = np.array([fr.time_ps for fr in traj.frames])
    b_len = float(np.linalg.norm(meta.burgers) * cfg.material.lattice_a_angstrom)
    settings = stress_settings(cfg, b_len)
    cache: dict[int, list[NodeLine] | str] = {}

    def lines_of(k: int) -> list[NodeLine] | str:
        if k not in cache:
            try:
                cache[k] = _discretize(traj.frames[k], f)
            except DiscretizationError as err:
                cache[k] = f"frame {k}: {err}"
        return cache[k]

    for i in range(0, len(traj.frames), f.frame_stride):
        j = _successor(times, i, f.dt_ps)
        if j is None:
            continue
        frame, later_frame = traj.frames[i], traj.frames[j]
        reject = {"traj_id": traj_id, "frame_index": i, "time_ps": float(times[i])}
        if not frame.lines:
            res.rejected.append(reject | {"reason": "no dislocation lines"})
            continue
        if len(frame.lines) != len(later_frame.lines):
            res.rejected.append(reject | {"reason": f"line count changes from {len(frame.lines)} to "
                                                   f"{len(later_frame.lines)} at t+dt (annihilation or reaction)"})
            continue
        now, later = lines_of(i), lines_of(j)
        if isinstance(now, str) or isinstance(later, str):
            res.rejected.append(reject | {"reason": now if isinstance(now, str) else later})
            continue
        try:
            snap = snapshot(now, frame.cell, applied, normal, meta.temperature_k, f.n_gauss, settings)
            disp, moved = targets(snap, later, frame.cell)
        except (MatchError, ValueError) as err:
            res.rejected.append(reject | {"reason": str(err)})
            continue
        _count_pk(res, snap, applied, disp)
        info = {"dt_ps": float(times[j] - times[i]), "temperature_k": meta.temperature_k, "angle_deg": meta.angle_deg,
                "stress_gpa": meta.stress_gpa, "traj_id": traj_id, "frame_index": i, "time_ps": float(times[i])}
        res.records.append(to_record(snap, disp, moved, frame.cell, info))
    return res


def _count_pk(res: FeaturizeResult, snap, applied: np.ndarray, disp: np.ndarray) -> None:
    """Count nodes whose displacement has the sign of the applied Peach-Koehler glide force."""
    offset = 0
    for ln in snap.lines:
        n = ln.n_nodes
        xi = np.roll(ln.nodes, -1, axis=0) - ln.nodes
        xi[-1] += ln.period
        xi /= np.linalg.norm(xi, axis=1)[:, None]
        force = np.cross(applied @ ln.burgers, xi)
        proj = np.einsum("nk,nk->n", force, disp[offset:offset + n])
        moving = np.abs(proj) > 0.1 * np.linalg.norm(force, axis=1) * np.linalg.norm(ln.burgers)
        res.pk_agree += int(np.sum(proj[moving] > 0))
        res.pk_total += int(np.sum(moving))
        offset += n


def featurize_file(cfg: Config, in_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Featurize one trajectory file into one graph file (atomic); return its summary entry."""
    in_path, out_path = Path(in_path), Path(out_path)
    t0 = time.perf_counter()
    traj = read_trajectory(in_path)
    res = featurize_trajectory(traj, cfg, in_path.stem)
    meta = {"source": in_path.name, "trajectory": traj.meta.model_dump(mode="json"),
            "features": cfg.features.model_dump(), "material": cfg.material.model_dump(),
            "gp_feature_names": list(GP_FEATURE_NAMES), "node_feature_names": list(NODE_FEATURE_NAMES)}
    save_graphs(out_path, res.records, meta)
    return {"traj_id": in_path.stem, "status": traj.meta.status, "n_frames": len(traj.frames),
            "n_graphs": len(res.records), "n_nodes": sum(len(r["node"]["x"]) for r in res.records),
            "n_gps": sum(len(r["gp"]["x"]) for r in res.records), "rejected": res.rejected,
            "pk_agree": res.pk_agree, "pk_total": res.pk_total, "wall_s": time.perf_counter() - t0,
            "_records": res.records}


def _feature_stats(records: list[dict], vtype: str, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    if not records:
        return {}
    x = np.concatenate([r[vtype]["x"].numpy() for r in records]).astype(np.float64)
    return {n: {"mean": float(x[:, k].mean()), "std": float(x[:, k].std()), "min": float(x[:, k].min()),
                "max": float(x[:, k].max())} for k, n in enumerate(names)}


def dataset_files(in_dir: Path) -> list[Path]:
    """The trajectories of a dataset folder: those its ``index.json`` lists, else every ``*.h5``.

    The simulate stage keeps earlier runs in its folder as a cache; the index names the current dataset.
    """
    index = in_dir / "index.json"
    if index.is_file():
        import json

        return sorted(in_dir / r["file"] for r in json.loads(index.read_text())["runs"])
    return sorted(in_dir.glob("*.h5"))


def featurize_dataset(cfg: Config, in_dir: str | Path, out_dir: str | Path, summary_path: str | Path) -> dict[str, Any]:
    """Featurize every ``*.h5`` trajectory in ``in_dir`` into ``out_dir/<name>.pt``; write a JSON summary.

    Stale ``.pt`` files in ``out_dir`` without a trajectory are removed so the output matches the input.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"trajectory folder {in_dir} not found")
    t0 = time.perf_counter()
    paths = dataset_files(in_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, records = [], []
    for p in paths:
        entry = featurize_file(cfg, p, out_dir / f"{p.stem}.pt")
        records.extend(entry.pop("_records"))
        entries.append(entry)
    keep = {f"{p.stem}.pt" for p in paths}
    for stale in out_dir.glob("*.pt"):
        if stale.name not in keep:
            stale.unlink()
    pk_total = sum(e["pk_total"] for e in entries)
    summary = {
        "n_trajectories": len(entries), "n_graphs": len(records),
        "n_nodes": sum(e["n_nodes"] for e in entries), "n_gps": sum(e["n_gps"] for e in entries),
        "n_rejected": sum(len(e["rejected"]) for e in entries),
        "pk_agreement": (sum(e["pk_agree"] for e in entries) / pk_total) if pk_total else None,
        "node_features": _feature_stats(records, "node", NODE_FEATURE_NAMES),
        "gp_features": _feature_stats(records, "gp", GP_FEATURE_NAMES),
        "target_displacement_angstrom": _target_stats(records),
        "trajectories": entries, "features": cfg.features.model_dump(),
        "graph_format_version": GRAPH_FORMAT_VERSION, "wall_s": time.perf_counter() - t0,
    }
    write_json(summary_path, summary)
    return summary


def _target_stats(records: list[dict]) -> dict[str, list[float]]:
    if not records:
        return {}
    y = np.concatenate([r["node"]["y"].numpy() for r in records]).astype(np.float64)
    return {"mean": y.mean(axis=0).tolist(), "std": y.std(axis=0).tolist(), "max_abs": np.abs(y).max(axis=0).tolist()}


def inspect_graph_file(path: str | Path) -> dict[str, Any]:
    """Counts and feature ranges of a graph file: n_graphs, n_nodes, n_gps, n_targets, feature min/max."""
    data = read_graph_file(path)
    recs = data["graphs"]
    meta = data["meta"]
    out: dict[str, Any] = {
        "path": str(path), "source": meta.get("source"), "n_graphs": len(recs),
        "n_nodes": sum(len(r["node"]["x"]) for r in recs), "n_gps": sum(len(r["gp"]["x"]) for r in recs),
        "n_targets": sum(len(r["target"]["pos"]) for r in recs),
    }
    for vtype, names in (("node", meta.get("node_feature_names", [])), ("gp", meta.get("gp_feature_names", []))):
        stats = _feature_stats(recs, vtype, tuple(names))
        out[f"{vtype}_feature_ranges"] = {n: [s["min"], s["max"]] for n, s in stats.items()}
    out["target_displacement_angstrom"] = _target_stats(recs)
    return out
