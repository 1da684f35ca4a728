"""Physics checks of a mobility law on straight dislocation dipoles built like the demo cells.

A probe is a periodic cell (x = glide direction, y = line, z = (101) normal; demo size 4 x L x 12 nm)
with two straight lines along +y carrying +b and -b, half a cell apart in x and z (the demo's
quadrupolar arrangement), under the pure resolved shear sigma = tau (b_hat n_hat + n_hat b_hat) that
the MD applies. The probes go through the project's own featurization (non-singular stress of the
periodic network plus the applied stress), so a law sees what it would see in a trajectory. The speed
of a probe is the mean glide velocity (m/s) of the +b line along the direction in which a positive
tau pushes it; its spread is the standard deviation of that mean over the ensemble's active members.

Checks (each a pass fraction and a worst deviation):
- reversal: v(-tau) = -v(tau) within 20% (exact for a pure resolved shear on {110});
- zero_stress: no applied stress, no glide: |v(0)| <= 5% of |v(0.5 GPa)|;
- spacing: the same line meshed at 0.5x to 5x the training node spacing changes its speed by <= 10%;
- line_sense: (xi, b) -> (-xi, -b) describes the same dislocation: relative change of v;
- character_order: edge faster than mixed faster than screw at every (T, stress) of the dataset grid;
- stress_monotone: speed rising with stress at fixed character over the probe stresses, at the
  dataset's temperatures (``_all_t``: at every probe temperature, 100-800 K, reported);
- spread: relative spread outside the training conditions (T 100/1000 K, stress 0.1/1.0 GPa) over the
  one on the dataset grid (reported: > 1 means the ensemble knows where it has not been).
Temperatures in K, stresses in GPa, speeds in m/s, lengths in nm unless named otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData

from dislomob.config import Config
from dislomob.features.discretize import NodeLine
from dislomob.features.featurize import stress_settings
from dislomob.features.graphs import snapshot, to_heterodata, to_record
from dislomob.md.crystal import BURGERS, nearest_orientation
from dislomob.model.predict import predict

ANGSTROM_PER_PS_TO_M_PER_S = 100.0
PROBE_TEMPERATURES_K = (100.0, 300.0, 500.0, 800.0)
PROBE_STRESSES_GPA = (0.1, 0.25, 0.5, 1.0)
SPACING_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0)
SWEEP_TEMPERATURES_K = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0)
REVERSAL_TOL, ZERO_TOL, SPACING_TOL = 0.2, 0.05, 0.1


_GRAPHS: dict[tuple, HeteroData] = {}  # probe graphs depend on the config only: built once per process


@dataclass(frozen=True)
class Probe:
    """Conditions of one straight-dipole probe; ``flip`` describes both lines as (-xi, -b)."""

    angle_deg: float
    stress_gpa: float
    temperature_k: float
    spacing_nm: float
    line_nm: float
    flip: bool = False


def demo_characters(cfg: Config) -> dict[str, float]:
    """The dataset's characters (deg) snapped to the available ones, by bucket: screw, mixed, edge."""
    return {"screw": nearest_orientation(0.0).angle_deg, "mixed": nearest_orientation(45.0).angle_deg,
            "edge": nearest_orientation(90.0).angle_deg}


def probe_burgers_direction(angle_deg: float) -> np.ndarray:
    """Unit Burgers vector in the probe cell (line along +y, normal +z) at character ``angle_deg``, turned
    the way the MD cells of dislomob.md.crystal turn it: (-sin, cos, 0). Lines at +theta and -theta
    about the normal are different dislocations in BCC (no {112} mirror), so the sense matters."""
    theta = math.radians(angle_deg)
    return np.array([-math.sin(theta), math.cos(theta), 0.0])


def probe_graph(p: Probe, cfg: Config, glide_nm: float | None = None, height_nm: float | None = None) -> HeteroData:
    """The featurized graph of a straight dipole probe (zero target displacement)."""
    lx = 10.0 * (glide_nm or cfg.md.box.glide_nm)
    lz = 10.0 * (height_nm or cfg.md.box.height_nm)
    ly = 10.0 * p.line_nm
    n = max(cfg.features.min_nodes_per_line, int(round(p.line_nm / p.spacing_nm)))
    b_len = float(np.linalg.norm(BURGERS) * cfg.material.lattice_a_angstrom)
    b_hat = probe_burgers_direction(p.angle_deg)
    normal = np.array([0.0, 0.0, 1.0])
    cell = np.diag([lx, ly, lz])
    lines = []
    for sign, (fx, fz) in ((1.0, (0.25, 0.25)), (-1.0, (0.75, 0.75))):
        nodes = np.column_stack([np.full(n, fx * lx), ly * np.arange(n) / n, np.full(n, fz * lz)])
        burgers, period = sign * b_len * b_hat, np.array([0.0, ly, 0.0])
        if p.flip:
            nodes, burgers, period = nodes[::-1].copy(), -burgers, -period
        lines.append(NodeLine(nodes, burgers, period, 1))
    applied = p.stress_gpa * (np.outer(b_hat, normal) + np.outer(normal, b_hat))
    snap = snapshot(lines, cell, applied, normal, p.temperature_k, cfg.features.n_gauss, stress_settings(cfg, b_len))
    info = {"dt_ps": cfg.features.dt_ps, "temperature_k": p.temperature_k, "angle_deg": p.angle_deg,
            "stress_gpa": p.stress_gpa, "traj_id": "probe", "frame_index": 0, "time_ps": 0.0}
    return to_heterodata(to_record(snap, np.zeros_like(snap.node_pos), lines, cell, info))


def probe_speeds(law: torch.nn.Module, probes: list[Probe], cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """(mean speed, member spread) in m/s of the +b line of each probe along the positive-tau glide direction."""
    key = (cfg.material.model_dump_json(), cfg.features.model_dump_json(), cfg.md.box.model_dump_json())
    graphs = []
    for p in probes:
        if (p, key) not in _GRAPHS:
            _GRAPHS[(p, key)] = probe_graph(p, cfg)
        graphs.append(_GRAPHS[(p, key)])
    preds = predict(law, graphs)
    speed, spread = [], []
    for p, g, pr in zip(probes, graphs, preds):
        n_line = len(g["node"].pos) // 2
        first = slice(0, n_line)  # the +b line comes first (also when flipped: same line order, nodes reversed)
        glide = -np.array([1.0, 0.0, 0.0])  # (sigma . b_hat) x xi for tau > 0 on the +b line along +y: n x y = -x
        per_member = pr.members[:, first].double().mean(1).numpy() @ glide / cfg.features.dt_ps
        speed.append(float(pr.mean[first].double().mean(0).numpy() @ glide) / cfg.features.dt_ps)
        spread.append(float(per_member.std()))
    return np.asarray(speed) * ANGSTROM_PER_PS_TO_M_PER_S, np.asarray(spread) * ANGSTROM_PER_PS_TO_M_PER_S


def _frac(ok: list[bool]) -> float | None:
    return float(np.mean(ok)) if ok else None


def consistency_checks(law: torch.nn.Module, cfg: Config) -> dict[str, Any]:
    """All checks of the module docstring for ``law``; returns metrics (``consistency_*``) and a ``table``."""
    chars = demo_characters(cfg)
    ref_nm = cfg.features.node_spacing_nm
    line_nm = cfg.md.box.line_nm
    data_t, data_s = sorted(cfg.dataset.temperatures_k), sorted(cfg.dataset.stresses_gpa)
    probes: dict[str, list[Probe]] = {"rev": [], "zero": [], "space": [], "flip": [], "order": [], "sweep": [],
                                      "ood": []}
    for a in chars.values():
        for t in PROBE_TEMPERATURES_K:
            for s in PROBE_STRESSES_GPA:
                probes["rev"] += [Probe(a, s, t, ref_nm, line_nm), Probe(a, -s, t, ref_nm, line_nm)]
            probes["zero"] += [Probe(a, 0.0, t, ref_nm, line_nm), Probe(a, 0.5, t, ref_nm, line_nm)]
        long_nm = 4 * max(SPACING_FACTORS) * ref_nm
        probes["space"] += [Probe(a, 0.5, 300.0, f * ref_nm, long_nm) for f in SPACING_FACTORS]
        probes["flip"] += [Probe(a, 0.5, 300.0, ref_nm, line_nm), Probe(a, 0.5, 300.0, ref_nm, line_nm, flip=True)]
        probes["sweep"] += [Probe(a, 0.5, t, ref_nm, line_nm) for t in SWEEP_TEMPERATURES_K]
        probes["order"] += [Probe(a, s, t, ref_nm, line_nm) for t in data_t for s in data_s]
        for t in sorted(set(data_t) | {100.0, 1000.0}):
            for s in sorted(set(data_s) | {0.1, 1.0}):
                probes["ood"].append(Probe(a, s, t, ref_nm, line_nm))
    flat = [p for ps in probes.values() for p in ps]
    v_all, sd_all = probe_speeds(law, flat, cfg)
    at, k = {}, 0
    for name, ps in probes.items():
        at[name] = (v_all[k:k + len(ps)], sd_all[k:k + len(ps)])
        k += len(ps)
    m: dict[str, Any] = {}
    v = at["rev"][0].reshape(-1, 2)
    dev = np.abs(v[:, 0] + v[:, 1]) / np.maximum(np.abs(v).max(1), 1e-12)
    rev_ok = (np.sign(v[:, 0]) == -np.sign(v[:, 1])) & (np.sign(v[:, 0]) != 0) & (dev <= REVERSAL_TOL)
    m["consistency_reversal_pass_fraction"], m["consistency_reversal_worst"] = _frac(rev_ok.tolist()), float(dev.max())
    v = at["zero"][0].reshape(-1, 2)
    ratio = np.abs(v[:, 0]) / np.maximum(np.abs(v[:, 1]), 1e-12)
    m["consistency_zero_stress_pass_fraction"] = _frac((ratio <= ZERO_TOL).tolist())
    m["consistency_zero_stress_worst"] = float(ratio.max())
    v = at["space"][0].reshape(len(chars), -1)
    ref = v[:, SPACING_FACTORS.index(1.0)][:, None]
    space_dev = np.abs(v / np.where(np.abs(ref) > 1e-12, ref, 1e-12) - 1.0)
    m["consistency_spacing_pass_fraction"] = _frac((space_dev <= SPACING_TOL).ravel().tolist())
    m["consistency_spacing_worst"] = float(space_dev.max())
    v = at["flip"][0].reshape(-1, 2)
    m["consistency_line_sense_worst"] = float((np.abs(v[:, 0] - v[:, 1]) / np.maximum(np.abs(v[:, 0]), 1e-12)).max())
    order_ok, mono_ok, t_mono = [], [], []
    rev = at["rev"][0].reshape(len(chars), len(PROBE_TEMPERATURES_K), len(PROBE_STRESSES_GPA), 2)[..., 0]
    order = at["order"][0].reshape(len(chars), -1)
    names = list(chars)
    for j in range(order.shape[1]):
        got = dict(zip(names, order[:, j]))
        order_ok.append(bool(got["edge"] > got["mixed"] > got["screw"]))
    mono_data: list[bool] = []
    for ci in range(len(chars)):
        for ti, t in enumerate(PROBE_TEMPERATURES_K):
            rising = (np.diff(rev[ci, ti]) > 0).tolist()
            mono_ok += rising
            mono_data += rising if t in data_t else []
    sweep = at["sweep"][0].reshape(len(chars), -1)
    m["consistency_character_order_pass_fraction"] = _frac(order_ok)
    m["consistency_stress_monotone_pass_fraction"] = _frac(mono_data)
    m["consistency_stress_monotone_all_t_pass_fraction"] = _frac(mono_ok)
    edge_sweep = sweep[names.index("edge")]
    m["consistency_edge_speed_falls_with_t_fraction"] = _frac((np.diff(edge_sweep) < 0).tolist())
    v, sd = at["ood"]
    rel = sd / np.maximum(np.abs(v), 1e-12)
    inside = np.array([p.temperature_k in data_t and p.stress_gpa in data_s for p in probes["ood"]])
    m["consistency_spread_in_grid"] = float(np.median(rel[inside]))
    m["consistency_spread_outside"] = float(np.median(rel[~inside]))
    m["consistency_spread_ratio"] = (m["consistency_spread_outside"] / m["consistency_spread_in_grid"]
                                     if m["consistency_spread_in_grid"] > 0 else None)
    rev2 = at["rev"][0].reshape(len(chars), len(PROBE_TEMPERATURES_K), len(PROBE_STRESSES_GPA), 2)
    zero2 = at["zero"][0].reshape(len(chars), len(PROBE_TEMPERATURES_K), 2)
    ie, it, i_s = names.index("edge"), PROBE_TEMPERATURES_K.index(300.0), PROBE_STRESSES_GPA.index(0.5)
    table = {"passed_of": {"reversal": [int(rev_ok.sum()), len(rev_ok)],
                           "zero_stress": [int((ratio <= ZERO_TOL).sum()), len(ratio)],
                           "spacing": [int((space_dev <= SPACING_TOL).sum()), space_dev.size],
                           "character_order": [int(sum(order_ok)), len(order_ok)],
                           "stress_monotone": [int(sum(mono_data)), len(mono_data)],
                           "stress_monotone_all_t": [int(sum(mono_ok)), len(mono_ok)]},
             "edge_300k_m_per_s": {"tau_0p5": float(rev2[ie, it, i_s, 0]), "tau_minus_0p5": float(rev2[ie, it, i_s, 1]),
                                   "tau_0": float(zero2[ie, it, 0]),
                                   "tau_0_spread": float(at["zero"][1].reshape(len(chars), len(PROBE_TEMPERATURES_K), 2)[ie, it, 0]),
                                   "flipped_line_sense": float(at["flip"][0].reshape(-1, 2)[ie, 1])},
             "characters_deg": chars, "temperatures_k": list(SWEEP_TEMPERATURES_K),
             "speed_vs_t_0p5gpa_m_per_s": {c: sweep[i].round(1).tolist() for i, c in enumerate(names)},
             "spacing_factors": list(SPACING_FACTORS),
             "speed_vs_spacing_m_per_s": {c: at["space"][0].reshape(len(chars), -1)[i].round(1).tolist()
                                          for i, c in enumerate(names)}}
    return {"metrics": m, "table": table}

