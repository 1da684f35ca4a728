"""Interpretability curves (paper Fig. 7): F/B, E, speed and displacement against the character angle.

Each point is a straight-dipole probe of dislomob.model.consistency (``Probe``, ``probe_graph``: the demo cell,
featurized like the data) at one (angle, stress, temperature); the values are those of its +b line along the
direction in which a positive resolved shear pushes it (the glide direction of ``probe_speeds``), averaged over
the line's nodes:

- PI-GNN: F/B = the F-net's glide force over the B-net's drag (m/s), E = the E-net's barrier (eV), read from
  the ensemble's own sub-net outputs (``EnsemblePIGNN.forward``: force, drag, energy_ev) per active member;
  speed = F/B * exp(-E / (k_B T)) per member, then the member mean.
- fitted law (dislomob.model.phenomenological): F/B = its athermal speed (the same law with the screw barrier Q set to
  zero), E = -k_B T ln(speed / athermal speed), the effective barrier of its cos^2/sin^2 interpolation (Q at
  screw, 0 at edge), so that speed = F/B * exp(-E / (k_B T)) holds for it too.

Speed and displacement (|mean nodal dx| over one ``features.dt_ps``, Angstrom) come from
dislomob.model.predict.predict. Speeds in m/s, stresses in GPa, temperatures in K, angles in degrees.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob import graph_schema as S
from dislomob.config import Config
from dislomob.model.phenomenological import PhenomenologicalMobility
from dislomob.model.consistency import ANGSTROM_PER_PS_TO_M_PER_S, Probe, probe_graph
from dislomob.model.pignn import K_B_EV_PER_K, EnsemblePIGNN
from dislomob.model.predict import predict

GLIDE = np.array([-1.0, 0.0, 0.0])  # positive-tau glide direction of the +b probe line (consistency.probe_speeds)
_GRAPHS: dict[tuple, HeteroData] = {}  # probe graphs depend on the config only: built once per process


@dataclass(frozen=True)
class Components:
    """Per probe (n,): speed, F/B (m/s), E (eV), displacement (Angstrom), member spread of the speed (m/s);
    ``members_f_over_b`` (K, n) m/s and ``members_energy_ev`` (K, n) per active member (K = 1 for the fitted law)."""

    speed_m_per_s: np.ndarray
    f_over_b_m_per_s: np.ndarray
    energy_ev: np.ndarray
    displacement_angstrom: np.ndarray
    spread_m_per_s: np.ndarray
    members_f_over_b: np.ndarray
    members_energy_ev: np.ndarray


@dataclass(frozen=True)
class CurveGrid:
    """Angles (deg) of every curve; F/B and displacement at ``stresses_gpa`` (at ``reference_temperature_k``) and
    at ``temperatures_k`` (at ``reference_stress_gpa``)."""

    angles_deg: tuple[float, ...]
    stresses_gpa: tuple[float, ...]
    temperatures_k: tuple[float, ...]
    reference_temperature_k: float
    reference_stress_gpa: float

    def conditions(self) -> list[tuple[str, float, float]]:
        """(sweep, stress GPa, temperature K) of each curve: the stress sweep, then the temperature sweep."""
        return ([("stress", s, self.reference_temperature_k) for s in self.stresses_gpa]
                + [("temperature", self.reference_stress_gpa, t) for t in self.temperatures_k])


def make_probe(cfg: Config, angle_deg: float, stress_gpa: float, temperature_k: float) -> Probe:
    """A probe of the demo cell (``md.box.line_nm`` long, nodes every ``features.node_spacing_nm``)."""
    return Probe(float(angle_deg), float(stress_gpa), float(temperature_k), cfg.features.node_spacing_nm,
                 cfg.md.box.line_nm)


def probe_graphs(probes: list[Probe], cfg: Config) -> list[HeteroData]:
    """The featurized probe graphs (cached per probe and config)."""
    key = (cfg.material.model_dump_json(), cfg.features.model_dump_json(), cfg.md.box.model_dump_json())
    out = []
    for p in probes:
        if (p, key) not in _GRAPHS:
            _GRAPHS[(p, key)] = probe_graph(p, cfg)
        out.append(_GRAPHS[(p, key)])
    return out


def _first_line(graphs: list[HeteroData]) -> list[slice]:
    """Node slice of the +b line (the first half of the nodes) of each probe graph."""
    return [slice(0, g[S.NODE].pos.shape[0] // 2) for g in graphs]


def _speed_and_displacement(law: torch.nn.Module, graphs: list[HeteroData], dt_ps: float
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(speed m/s, displacement Angstrom, member spread m/s) of each probe's +b line, through ``predict``."""
    speed, disp, spread = [], [], []
    for pr, line in zip(predict(law, graphs), _first_line(graphs)):
        mean = pr.mean[line].double().mean(0).numpy()
        speed.append(float(mean @ GLIDE) / dt_ps)
        disp.append(float(np.linalg.norm(mean)))
        spread.append(float((pr.members[:, line].double().mean(1).numpy() @ GLIDE).std()) / dt_ps)
    scale = ANGSTROM_PER_PS_TO_M_PER_S
    return np.asarray(speed) * scale, np.asarray(disp), np.asarray(spread) * scale


@torch.no_grad()
def _pignn_members(model: EnsemblePIGNN, graphs: list[HeteroData], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(F/B (K, n) Angstrom/ps, E (K, n) eV) of the active members on each probe's +b line, from the sub-nets."""
    glide = torch.as_tensor(GLIDE)
    fb, en = [], []
    for batch in DataLoader(graphs, batch_size=batch_size):
        out = model(batch)
        active = model.active
        frame = batch[S.NODE].frame.double()
        force = torch.einsum("nij,mni->mnj", frame, out["force"][active].double())  # Cartesian (K, n, 3)
        f_over_b = (force @ glide) / out["drag"][active].double()
        energy = out["energy_ev"][active].double()
        ptr = batch[S.NODE].ptr.tolist()
        for g in range(batch.num_graphs):
            line = slice(ptr[g], ptr[g] + (ptr[g + 1] - ptr[g]) // 2)
            fb.append(f_over_b[:, line].mean(1))
            en.append(energy[:, line].mean(1))
    return torch.stack(fb, 1).numpy(), torch.stack(en, 1).numpy()


def law_components(law: torch.nn.Module, probes: list[Probe], cfg: Config) -> Components:
    """F/B, E, speed and displacement of ``law`` (a PI-GNN ensemble or the fitted law) on ``probes``."""
    graphs = probe_graphs(probes, cfg)
    dt = cfg.features.dt_ps
    speed, disp, spread = _speed_and_displacement(law, graphs, dt)
    temps = np.array([p.temperature_k for p in probes])
    if isinstance(law, EnsemblePIGNN):
        fb_members, e_members = _pignn_members(law, graphs)
        fb_members = fb_members * ANGSTROM_PER_PS_TO_M_PER_S  # F/B of the sub-nets is Angstrom/ps
    elif isinstance(law, PhenomenologicalMobility):
        athermal = copy.deepcopy(law)
        with torch.no_grad():
            athermal.log_screw_activation.fill_(-100.0)  # Q = e^-100 eV: exp(-Q / kT) = 1 at any T > 0
        fb = _speed_and_displacement(athermal, graphs, dt)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.abs(fb) > 0, speed / fb, np.nan)
            energy = np.where(ratio > 0, -K_B_EV_PER_K * temps * np.log(ratio), np.nan)
        fb_members, e_members = fb[None], energy[None]
    else:
        raise TypeError(f"interpretability curves need an EnsemblePIGNN or a PhenomenologicalMobility, got "
                        f"{type(law).__name__}")
    return Components(speed, fb_members.mean(0), e_members.mean(0), disp, spread, fb_members, e_members)


def recomposed_speed(c: Components, temperatures_k: np.ndarray) -> np.ndarray:
    """Member mean of F/B * exp(-E / (k_B T)) (m/s) for each probe at ``temperatures_k`` (K)."""
    return (c.members_f_over_b * np.exp(-c.members_energy_ev / (K_B_EV_PER_K * np.asarray(temperatures_k)))).mean(0)


def curve_rows(law: torch.nn.Module, name: str, grid: CurveGrid, cfg: Config) -> list[dict[str, Any]]:
    """One row per (curve, angle): law ``name``, sweep, stress, temperature, angle and the components."""
    conds = grid.conditions()
    probes = [make_probe(cfg, a, s, t) for _, s, t in conds for a in grid.angles_deg]
    c = law_components(law, probes, cfg)
    rows = []
    sweeps = [sweep for sweep, _, _ in conds for _ in grid.angles_deg]
    for k, (p, sweep) in enumerate(zip(probes, sweeps)):
        rows.append({"law": name, "sweep": sweep, "stress_gpa": p.stress_gpa, "temperature_k": p.temperature_k,
                     "angle_deg": p.angle_deg, "f_over_b_m_per_s": float(c.f_over_b_m_per_s[k]),
                     "energy_ev": float(c.energy_ev[k]), "speed_m_per_s": float(c.speed_m_per_s[k]),
                     "spread_m_per_s": float(c.spread_m_per_s[k]),
                     "displacement_angstrom": float(c.displacement_angstrom[k])})
    return rows
