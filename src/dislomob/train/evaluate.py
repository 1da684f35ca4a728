"""Single-step test metrics of the ensemble and the baseline, overall and per character-angle bucket.

Relative error of a graph = L(D_gt, D_pred) / L(D_gt, D_t) (dimensionless; 1 = no better than
predicting no motion). Buckets (dislomob.train.buckets) use the graph's character angle.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob import graph_schema as S
from dislomob.model.phenomenological import PhenomenologicalMobility
from dislomob.model.floors import mean_law_errors
from dislomob.model.line_geometry import node_tangent
from dislomob.model.loss import displacement_loss, relative_error
from dislomob.model.predict import predict
from dislomob.train.buckets import BUCKETS, bucket_of


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


@torch.no_grad()
def predict_graphs(model: torch.nn.Module, law: PhenomenologicalMobility, graphs: list[HeteroData],
                   batch_size: int = 32) -> dict[str, np.ndarray]:
    """Per-graph relative errors and losses (Angstrom) of ensemble mean and baseline, angle, trajectory,
    node sigma and |mean dx| (all nodes)."""
    out: dict[str, list] = {k: [] for k in ("err", "base_err", "loss", "base_loss", "angle", "sigma", "mu", "traj")}
    ours, theirs = predict(model, graphs, batch_size), predict(law, graphs, batch_size)
    for start in range(0, len(graphs), batch_size):
        chunk = graphs[start:start + batch_size]
        batch = next(iter(DataLoader(chunk, batch_size=len(chunk))))
        mean = torch.cat([p.mean for p in ours[start:start + batch_size]])
        var = torch.cat([p.var for p in ours[start:start + batch_size]])
        base = torch.cat([p.mean for p in theirs[start:start + batch_size]])
        out["err"] += relative_error(batch, mean).tolist()
        out["base_err"] += relative_error(batch, base).tolist()
        out["loss"] += displacement_loss(batch, mean).tolist()
        out["base_loss"] += displacement_loss(batch, base).tolist()
        out["angle"] += batch.angle_deg.reshape(-1).tolist()
        out["traj"] += [str(t) for t in (batch.traj_id if isinstance(batch.traj_id, list) else [batch.traj_id])]
        out["sigma"] += var.sum(-1).sqrt().tolist()
        out["mu"] += mean.norm(dim=-1).tolist()
    return {k: np.asarray(v) if k == "traj" else np.asarray(v, dtype=np.float64) for k, v in out.items()}


def trajectory_bootstrap_median(values: np.ndarray, traj: np.ndarray, n_resamples: int = 2000, seed: int = 0,
                                level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the median of ``values`` when whole trajectories (not frames) are resampled."""
    ids = sorted(set(traj.tolist()))
    groups = [values[traj == t] for t in ids]
    rng = np.random.default_rng(seed)
    meds = [float(np.median(np.concatenate([groups[i] for i in rng.integers(0, len(ids), len(ids))])))
            for _ in range(n_resamples)]
    lo, hi = np.quantile(meds, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def evaluation_metrics(model: torch.nn.Module, law: PhenomenologicalMobility, graphs: list[HeteroData]) -> dict[str, float | None]:
    """Metrics for ``dvc metrics show``: medians overall (with a 95% interval from resampling test
    trajectories) and per bucket, mean losses, ensemble relative uncertainty, and the mean-law floor
    (``floor_mean_law_median``: each test line moved by its own trajectory-mean displacement,
    dislomob.model.floors) that the data allows on the same graphs."""
    if not graphs:
        raise ValueError("no test graphs to evaluate")
    p = predict_graphs(model, law, graphs)
    buckets = np.array([bucket_of(a) for a in p["angle"]])
    m: dict[str, float | None] = {
        "test_error_median": _median(p["err"].tolist()),
        "baseline_test_error_median": _median(p["base_err"].tolist()),
        "test_loss_mean_angstrom": float(p["loss"].mean()),
        "baseline_test_loss_mean_angstrom": float(p["base_loss"].mean()),
        "uncertainty_rel": float(p["sigma"].mean() / max(p["mu"].mean(), 1e-12)),
        "n_test_graphs": len(graphs),
        "n_test_trajectories": len(set(p["traj"].tolist())),
    }
    floor = mean_law_errors(graphs)
    m["floor_mean_law_median"] = _median(floor[np.isfinite(floor)].tolist())
    for key, vals in (("test_error_median", p["err"]), ("baseline_test_error_median", p["base_err"]),
                      ("floor_mean_law_median", floor)):
        ok = np.isfinite(vals)
        m[f"{key}_ci_low"], m[f"{key}_ci_high"] = trajectory_bootstrap_median(vals[ok], p["traj"][ok])
    for b in BUCKETS:
        sel = buckets == b
        m[f"test_error_median_{b}"] = _median(p["err"][sel].tolist())
        m[f"baseline_test_error_median_{b}"] = _median(p["base_err"][sel].tolist())
        m[f"n_test_graphs_{b}"] = int(sel.sum())
    return m


@torch.no_grad()
def character_speeds(model: torch.nn.Module, graphs: list[HeteroData]) -> dict[str, float | None]:
    """Predicted glide speeds (Angstrom/ps, ensemble mean) of screw-like (|cos theta| > 0.87) and edge-like
    (|cos theta| < 0.5) nodes, theta from each node's tangent, compared at the same stress and temperature.

    Per (T, stress) condition that has both kinds of nodes: the ratio of their median speeds;
    ``speed_ratio_screw_to_edge`` is the largest such ratio (the least favourable condition).
    """
    speeds: dict[tuple[float, float], dict[str, list[float]]] = {}
    preds = predict(model, graphs)
    for start, batch in zip(range(0, len(graphs), 32), DataLoader(graphs, batch_size=32)):
        mean = torch.cat([p.mean for p in preds[start:start + 32]])
        cos = (node_tangent(batch) * batch[S.NODE].frame[:, 0]).sum(-1).abs()
        graph_of = getattr(batch[S.NODE], "batch", torch.zeros(len(cos), dtype=torch.long))
        v = mean.norm(dim=-1) / batch.dt_ps.reshape(-1)[graph_of]
        cond = torch.stack([batch.temperature_k.reshape(-1), batch.stress_gpa.reshape(-1)], 1)[graph_of]
        for kind, sel in (("screw_like", cos > 0.87), ("edge_like", cos < 0.5)):
            for (t, s), speed in zip(cond[sel].tolist(), v[sel].tolist()):
                speeds.setdefault((round(t, 3), round(s, 4)), {"screw_like": [], "edge_like": []})[kind].append(speed)
    ratios = [np.median(d["screw_like"]) / np.median(d["edge_like"]) for d in speeds.values()
              if d["screw_like"] and d["edge_like"] and np.median(d["edge_like"]) > 0]
    every = {k: [x for d in speeds.values() for x in d[k]] for k in ("screw_like", "edge_like")}
    return {"speed_screw_like_angstrom_per_ps": _median(every["screw_like"]),
            "speed_edge_like_angstrom_per_ps": _median(every["edge_like"]),
            "speed_ratio_screw_to_edge": float(max(ratios)) if ratios else None,
            "n_conditions_screw_vs_edge": len(ratios)}
