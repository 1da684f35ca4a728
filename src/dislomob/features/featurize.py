"""The featurize stage: trajectory files (data/md/*.h5) -> graph files (data/graphs/*.pt) + summary.

Each frame at time t whose successor at t + dt exists becomes one graph. A frame is skipped, with
the reason recorded, when its line count differs from its successor's (annihilation), when a line
cannot be resampled (open line, unresolvable periodic closure) or matched at t + dt, or when its
target could be ambiguous: every line is followed through the frames between t and t + dt and the
t + dt line is taken at the periodic image its path reaches (dislomob.features.targets.follow_lines).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dislomob.atomic import remove_stale_temps, write_json
from dislomob.config import Config, ConfigError, FeaturesConfig
from dislomob.errors import InputFileError
from dislomob.features.discretize import DiscretizationError, NodeLine, discretize_line
from dislomob.features.graphs import (
    GRAPH_FORMAT_VERSION, StressSettings, read_graph_file, save_graphs, snapshot, targets, to_record,
)
from dislomob.features.invariants import GP_FEATURE_NAMES, NODE_FEATURE_NAMES, graph_features
from dislomob.features.targets import MatchError, follow_lines
from dislomob.md.analysis import dipole_symmetry
from dislomob.md.crystal_frame import CrystalMotion
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
    motion = CrystalMotion.of(traj.frames)

    def relative_to(i: int, k: int, lines: list[NodeLine] | str) -> list[NodeLine] | str:
        """Frame k's lines moved back by the crystal's displacement since frame i (targets relative to the crystal)."""
        if isinstance(lines, str) or not motion.recorded:
            return lines
        return [replace(ln, nodes=ln.nodes - motion.between(i, k, ln.nodes)) for ln in lines]

    def lines_of(k: int) -> list[NodeLine] | str:
        if k not in cache:
            try:
                cache[k] = _discretize(traj.frames[k], f)
            except DiscretizationError as err:
                cache[k] = f"frame {k}: {err}"
        return cache[k]

    def window_lines(k: int, n_lines: int) -> list[NodeLine] | str:
        n = len(traj.frames[k].lines)
        return lines_of(k) if n == n_lines else f"{n} line(s) instead of {n_lines}"

    spacing = frame_spacing_ps(traj) or f.dt_ps
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
            later = relative_to(i, j, later)
            path = [(float(times[k]), relative_to(i, k, window_lines(k, len(frame.lines)))) for k in range(i + 1, j + 1)]
            track = follow_lines(now, path, frame.cell, float(times[i]), spacing)
            snap = snapshot(now, frame.cell, applied, normal, meta.temperature_k, f.n_gauss, settings)
            disp, moved = targets(snap, later, frame.cell, track)
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


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def read_trajectory_file(path: str | Path) -> Trajectory:
    """A trajectory file's contents; anything unreadable (missing, empty, truncated, junk) raises
    InputFileError naming the file and the reason in one line."""
    path = Path(path)
    try:
        return read_trajectory(path)
    except Exception as err:  # h5py, pydantic and numpy raise many kinds for a damaged file
        raise InputFileError(f"{path}: unreadable trajectory ({_one_line(err)})") from None


def frame_spacing_ps(traj: Trajectory) -> float | None:
    """Median time between a trajectory's frames (ps); None with fewer than two frames."""
    if len(traj.frames) < 2:
        return None
    return float(np.median(np.diff([fr.time_ps for fr in traj.frames])))


def check_dt(f: FeaturesConfig, name: str, traj: Trajectory) -> str | None:
    """Raise ConfigError when ``features.dt_ps`` is no whole multiple of the trajectory's frame spacing;
    return the reason the trajectory gives no graph (too short for dt, fewer than two frames) or None."""
    spacing = frame_spacing_ps(traj)
    if spacing is None:
        return f"{len(traj.frames)} frame(s): a graph needs a frame and its successor at t + features.dt_ps"
    ratio = f.dt_ps / spacing
    if round(ratio) < 1 or abs(ratio - round(ratio)) > 0.05:
        low = max(1, int(np.floor(ratio))) * spacing
        raise ConfigError(f"features.dt_ps={f.dt_ps} is not a whole multiple of the frame spacing {spacing:.6g} ps of "
                          f"{name}: allowed k x {spacing:.6g} ps (e.g. {low:.6g} or {low + spacing:.6g})")
    span = traj.frames[-1].time_ps - traj.frames[0].time_ps
    if f.dt_ps > span + 0.25 * spacing:
        return f"spans {span:.6g} ps, shorter than features.dt_ps={f.dt_ps}"
    return None


def _graph_meta(cfg: Config, in_path: Path, traj: Trajectory) -> dict[str, Any]:
    """Graph file metadata: no timings (wall times of the MD run), so equal physics gives equal bytes."""
    run = {k: v for k, v in traj.meta.model_dump(mode="json").items() if "wall" not in k}
    return {"source": in_path.name, "trajectory": run,
            "features": cfg.features.model_dump(), "material": cfg.material.model_dump(),
            "gp_feature_names": list(GP_FEATURE_NAMES), "node_feature_names": list(NODE_FEATURE_NAMES)}


def _entry(in_path: Path, traj: Trajectory, res: FeaturizeResult, t0: float, note: str | None) -> dict[str, Any]:
    entry = {"traj_id": in_path.stem, "status": traj.meta.status, "n_frames": len(traj.frames),
             "n_graphs": len(res.records), "n_nodes": sum(len(r["node"]["pos"]) for r in res.records),
             "n_gps": sum(len(r["gp"]["pos"]) for r in res.records), "rejected": res.rejected,
             "pk_agree": res.pk_agree, "pk_total": res.pk_total, "wall_s": time.perf_counter() - t0,
             "_records": res.records}
    if note:
        entry["note"] = note
    return entry


def featurize_file(cfg: Config, in_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Featurize one trajectory file into one graph file (atomic, byte-reproducible); return its summary entry.

    Nothing is written when the trajectory is unreadable (InputFileError), when ``features.dt_ps`` does not
    fit its frames (ConfigError) or when it gives no graph (InputFileError with the reasons).
    """
    in_path, out_path = Path(in_path), Path(out_path)
    t0 = time.perf_counter()
    traj = read_trajectory_file(in_path)
    note = check_dt(cfg.features, in_path.name, traj)
    res = featurize_trajectory(traj, cfg, in_path.stem)
    if not res.records:
        why = note or "; ".join(sorted({r["reason"] for r in res.rejected}))[:500] or f"status {traj.meta.status}"
        raise InputFileError(f"{in_path}: no graph ({why}); {out_path} not written")
    save_graphs(out_path, res.records, _graph_meta(cfg, in_path, traj))
    return _entry(in_path, traj, res, t0, note)


def _feature_stats(records: list[dict], vtype: str, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean, std, min, max of the model's invariant inputs (dislomob.features.invariants) over ``records``."""
    if not records or not names:
        return {}
    from dislomob.features.graphs import to_heterodata

    k = 0 if vtype == "node" else 1
    x = np.concatenate([graph_features(to_heterodata(r), torch.float64)[k].numpy() for r in records])
    if x.shape[1] != len(names):
        return {}
    return {n: {"mean": float(x[:, j].mean()), "std": float(x[:, j].std()), "min": float(x[:, j].min()),
                "max": float(x[:, j].max())} for j, n in enumerate(names)}


def dataset_files(in_dir: Path) -> list[Path]:
    """The trajectories of a dataset folder: those its ``index.json`` lists, else every ``*.h5``.

    The simulate stage keeps earlier runs in its folder as a cache; the index names the current dataset.
    """
    index = in_dir / "index.json"
    if index.is_file():
        import json

        try:
            return sorted(in_dir / r["file"] for r in json.loads(index.read_text())["runs"])
        except Exception as err:
            raise InputFileError(f"{index}: unreadable dataset index ({_one_line(err)})") from None
    return sorted(in_dir.glob("*.h5"))


def featurize_dataset(cfg: Config, in_dir: str | Path, out_dir: str | Path, summary_path: str | Path) -> dict[str, Any]:
    """Featurize the dataset's trajectories (:func:`dataset_files`) into ``out_dir/<name>.pt``; write a JSON summary.

    Everything is read, checked and featurized in memory before anything is written, so a failed or empty
    run leaves ``out_dir`` and the summary as they were: an empty input folder, a ``features.dt_ps`` that
    is no multiple of the frame spacing or longer than every trajectory, every input unreadable, or zero
    graphs in all raise (ConfigError / InputFileError, naming key or files). An unreadable trajectory among
    readable ones is skipped with its name and reason (summary ``skipped``; its earlier graph file, if
    any, is kept). Graph files are rewritten only when their bytes change; ``.pt`` files of trajectories
    no longer in the dataset are removed; temporary files of killed runs are removed at start.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    remove_stale_temps(out_dir)
    remove_stale_temps(Path(summary_path).parent)
    if not in_dir.is_dir():
        raise InputFileError(f"trajectory folder {in_dir} not found; {out_dir} left unchanged")
    t0 = time.perf_counter()
    paths = dataset_files(in_dir)
    if not paths:
        raise InputFileError(f"no trajectories in {in_dir} (no index.json, no *.h5): nothing to featurize; "
                             f"{out_dir} left unchanged")
    readable, skipped = [], []
    for p in paths:
        try:
            readable.append((p, read_trajectory_file(p)))
        except InputFileError as err:
            skipped.append({"file": p.name, "reason": str(err).removeprefix(f"{p}: "),
                            "previous_graphs_kept": (out_dir / f"{p.stem}.pt").is_file()})
    if not readable:
        raise InputFileError(f"no readable trajectory in {in_dir}: "
                             + "; ".join(f"{s['file']}: {s['reason']}" for s in skipped) + f"; {out_dir} left unchanged")
    try:  # ConfigError before any work
        notes = {p: check_dt(cfg.features, p.name, traj) for p, traj in readable}
    except ConfigError as err:
        raise ConfigError(f"{err}; {out_dir} left unchanged") from None
    if all(notes.values()):
        why = "; ".join(f"{p.name} {n}" for p, n in list(notes.items())[:3]) + ("; ..." if len(notes) > 3 else "")
        spans = [(tr.frames[-1].time_ps - tr.frames[0].time_ps, frame_spacing_ps(tr)) for _, tr in readable if len(tr.frames) >= 2]
        if spans:
            span, spacing = max(spans)
            raise ConfigError(f"features.dt_ps={cfg.features.dt_ps} is longer than every trajectory (longest spans "
                              f"{span:.6g} ps, frame spacing {spacing:.6g} ps): allowed k x {spacing:.6g} ps <= {span:.6g} ps "
                              f"({why}); {out_dir} left unchanged")
        raise InputFileError(f"no trajectory in {in_dir} has two frames: {why}; {out_dir} left unchanged")
    entries, records, outputs = [], [], []
    for p, traj in readable:
        t1 = time.perf_counter()
        try:
            res = featurize_trajectory(traj, cfg, p.stem)
        except Exception as err:  # a readable file with inconsistent contents: skip it, keep the rest
            skipped.append({"file": p.name, "reason": f"featurization failed ({_one_line(err)})",
                            "previous_graphs_kept": (out_dir / f"{p.stem}.pt").is_file()})
            continue
        entry = _entry(p, traj, res, t1, notes[p])
        records.extend(entry.pop("_records"))
        entries.append(entry)
        outputs.append((out_dir / f"{p.stem}.pt", res.records, _graph_meta(cfg, p, traj)))
    if not records:
        raise InputFileError(f"featurize: 0 graphs from {len(entries)} trajectories in {in_dir} "
                             f"({sum(len(e['rejected']) for e in entries)} frames rejected; see their reasons with "
                             f"`dislomob featurize FILE --out X.pt`); {out_dir} left unchanged")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = sum(save_graphs(path, recs, meta) is not False for path, recs, meta in outputs)
    keep = {f"{p.stem}.pt" for p in paths}
    for stale in out_dir.glob("*.pt"):
        if stale.name not in keep:
            stale.unlink()
    pk_total = sum(e["pk_total"] for e in entries)
    summary = {
        "n_trajectories": len(entries), "n_graphs": len(records),
        "n_nodes": sum(e["n_nodes"] for e in entries), "n_gps": sum(e["n_gps"] for e in entries),
        "n_rejected": sum(len(e["rejected"]) for e in entries),
        "n_skipped": len(skipped), "skipped": skipped, "n_files_written": written,
        "pk_agreement": (sum(e["pk_agree"] for e in entries) / pk_total) if pk_total else None,
        "node_features": _feature_stats(records, "node", NODE_FEATURE_NAMES),
        "gp_features": _feature_stats(records, "gp", GP_FEATURE_NAMES),
        "target_displacement_angstrom": _target_stats(records),
        **_frame_stats([traj for _, traj in readable]),
        "trajectories": entries, "features": cfg.features.model_dump(),
        "graph_format_version": GRAPH_FORMAT_VERSION, "wall_s": time.perf_counter() - t0,
    }
    write_json(summary_path, summary)
    return summary


def _frame_stats(trajs: list[Trajectory]) -> dict[str, Any]:
    """The dataset's crystal-frame check: median dipole common-mode speed (m/s) and asymmetry, lattice references."""
    sym = [s for s in (dipole_symmetry(t) for t in trajs) if s is not None]
    refs: dict[str, int] = {}
    for t in trajs:
        name = t.meta.lattice_reference or "none (lab frame)"
        refs[name] = refs.get(name, 0) + 1
    return {"dipole_common_mode_m_s_median": float(np.median([s.common_mode_m_s for s in sym])) if sym else None,
            "dipole_asymmetry_median": float(np.median([s.asymmetry for s in sym])) if sym else None,
            "n_dipoles_checked": len(sym), "lattice_reference": refs}


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
        "n_nodes": sum(len(r["node"]["pos"]) for r in recs), "n_gps": sum(len(r["gp"]["pos"]) for r in recs),
        "n_targets": sum(len(r["target"]["pos"]) for r in recs),
    }
    for vtype, names in (("node", meta.get("node_feature_names", [])), ("gp", meta.get("gp_feature_names", []))):
        stats = _feature_stats(recs, vtype, tuple(names))
        out[f"{vtype}_feature_ranges"] = {n: [s["min"], s["max"]] for n, s in stats.items()}
    out["target_displacement_angstrom"] = _target_stats(recs)
    return out
