"""Physics checks of a mobility law on straight-dipole probes, each a pass/fail with the numbers behind it.

- ``edge_faster_than_screw``: at every (T, stress) of the test set the edge line (90 deg) glides faster than the
  screw line (0 deg); worst = the largest v_screw / v_edge (>= 1 fails).
- ``speed_rises_with_stress``: at every test temperature and character (screw, mixed, edge of the dataset) the
  speed rises strictly over the stresses; worst = the smallest relative rise (v_i+1 - v_i) / |v_i|.
- ``energy_largest_near_screw``: at every curve temperature the barrier E is largest at a screw-like character
  (within 30 deg of 0 or 180, dislomob.train.buckets) and larger there than at any other character; worst = the
  smallest margin max E(screw-like) - max E(other) (eV).

Speeds are the probes' glide speeds along the driving direction (m/s; negative = backwards), from
dislomob.evaluate.interpret.law_components. Temperatures in K, stresses in GPa, angles in degrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from dislomob.config import Config
from dislomob.evaluate.interpret import law_components, make_probe
from dislomob.train.buckets import bucket_of

SCREW_DEG, EDGE_DEG = 0.0, 90.0


@dataclass(frozen=True)
class Check:
    """One physics check: passed when every one of its ``n`` cases passes; ``worst`` as the module docstring says."""

    name: str
    passed: bool
    n_passed: int
    n: int
    worst: float | None
    cases: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(name: str, ok: list[bool], worst: float | None, cases: list[dict[str, Any]]) -> Check:
    return Check(name, bool(ok) and all(ok), int(sum(ok)), len(ok), worst, cases)


def edge_faster_than_screw(law: torch.nn.Module, conditions: list[tuple[float, float]], cfg: Config) -> Check:
    """The edge line faster than the screw line at each (temperature K, stress GPa) of ``conditions``."""
    conds = sorted(set((float(t), float(s)) for t, s in conditions))
    probes = [make_probe(cfg, a, s, t) for t, s in conds for a in (SCREW_DEG, EDGE_DEG)]
    v = law_components(law, probes, cfg).speed_m_per_s.reshape(-1, 2)
    cases, ok = [], []
    for (t, s), (screw, edge) in zip(conds, v):
        ratio = float(screw / edge) if edge != 0 else float("inf")
        ok.append(bool(edge > screw))
        cases.append({"temperature_k": t, "stress_gpa": s, "speed_screw_m_per_s": float(screw),
                      "speed_edge_m_per_s": float(edge), "screw_to_edge": ratio, "passed": ok[-1]})
    worst = max((c["screw_to_edge"] for c in cases), default=None)
    return _check("edge_faster_than_screw", ok, worst, cases)


def speed_rises_with_stress(law: torch.nn.Module, stresses_by_temperature: dict[float, list[float]],
                            characters_deg: dict[str, float], cfg: Config) -> Check:
    """Speed strictly rising over the sorted stresses (GPa) given for each temperature (K), at each named
    character (deg)."""
    series = {float(t): sorted(set(map(float, s))) for t, s in sorted(stresses_by_temperature.items())}
    for t, s in series.items():
        if len(s) < 2:
            raise ValueError(f"stresses {s} GPa at {t} K: a rise with stress needs >= 2 distinct stresses")
    chars = list(characters_deg.items())
    keys = [(t, name, a, s) for t, ss in series.items() for name, a in chars for s in ss]
    v = law_components(law, [make_probe(cfg, a, s, t) for t, _, a, s in keys], cfg).speed_m_per_s
    cases, ok, rises, k = [], [], [], 0
    for t, ss in series.items():
        for name, a in chars:
            speeds = v[k:k + len(ss)]
            k += len(ss)
            rise = np.diff(speeds) / np.maximum(np.abs(speeds[:-1]), 1e-12)
            rises.append(float(rise.min()))
            ok.append(bool(np.all(np.diff(speeds) > 0)))
            cases.append({"temperature_k": t, "character": name, "angle_deg": a, "stresses_gpa": ss,
                          "speeds_m_per_s": speeds.round(3).tolist(), "smallest_relative_rise": rises[-1],
                          "passed": ok[-1]})
    return _check("speed_rises_with_stress", ok, min(rises) if rises else None, cases)


def energy_largest_near_screw(law: torch.nn.Module, temperatures_k: list[float], stress_gpa: float,
                              angles_deg: list[float], cfg: Config) -> Check:
    """E largest at a screw-like character at each temperature (curve angles ``angles_deg``, stress ``stress_gpa``)."""
    angles = np.asarray(sorted(set(map(float, angles_deg))))
    screw_like = np.array([bucket_of(a) == "screw_like" for a in angles])
    if screw_like.all() or not screw_like.any():
        raise ValueError(f"angles_deg={angles.tolist()}: need screw-like (within 30 deg of 0/180) and other angles")
    temps = sorted(set(map(float, temperatures_k)))
    probes = [make_probe(cfg, a, stress_gpa, t) for t in temps for a in angles]
    energy = law_components(law, probes, cfg).energy_ev.reshape(len(temps), len(angles))
    cases, ok, margins = [], [], []
    for t, e in zip(temps, energy):
        screw_max, other_max = float(np.max(e[screw_like])), float(np.max(e[~screw_like]))
        margin = screw_max - other_max
        at = float(angles[int(np.nanargmax(e))]) if np.isfinite(e).any() else float("nan")
        margins.append(margin if np.isfinite(margin) else float("-inf"))
        ok.append(bool(np.isfinite(margin) and margin > 1e-9 and bucket_of(at) == "screw_like"))
        cases.append({"temperature_k": t, "stress_gpa": float(stress_gpa), "angle_of_max_deg": at,
                      "energy_max_screw_like_ev": screw_max, "energy_max_other_ev": other_max,
                      "margin_ev": margin, "passed": ok[-1]})
    return _check("energy_largest_near_screw", ok, min(margins) if margins else None, cases)
