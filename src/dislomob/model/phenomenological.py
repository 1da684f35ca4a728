"""Phenomenological BCC mobility law fitted to the same graphs as the PI-GNN (the baseline), a registered law
(``phenomenological``, dislomob.model.laws): its ``forward`` returns {"dx": (1, n, 3)} like an ensemble's.

A simplified form of Po et al. 2016 (Acta Mater 119:123): linear drag for non-screw characters,
a thermally activated screw term, interpolated in the character angle theta between the line
tangent xi and b:

    v = m(theta, T) * f_glide,  f_glide = glide part of (sigma . b_hat) x xi  (GPa; |b| absorbed in m)
    m(theta, T) = cos^2(theta) * m_s(T) + sin^2(theta) * m_e(T)
    m_e(T) = 1 / (B0_e + B1_e * T / 300 K)                 (Angstrom/ps/GPa)
    m_s(T) = m0_s * exp(-Q_s / (k_B T))                       (Q_s in eV)

The nodal displacement is dx = dt * v. Stress at a node is the mean of its Gauss points' Cartesian
``stress_gpa``; the tangent is the mean of the unit vectors of its two segments. The sign of the
force (Burgers vector convention of the data) is fitted too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from dislomob import graph_schema as S
from dislomob.model.line_geometry import node_stress, node_tangent
from dislomob.model.loss import displacement_loss
from dislomob.model.pignn import K_B_EV_PER_K, _node_dt


@dataclass(frozen=True)
class BaselineFit:
    """Fitted parameters (units in names) and the training loss per graph (Angstrom)."""

    edge_drag0: float
    edge_drag1: float
    screw_mobility0: float
    screw_activation_ev: float
    sign: float
    train_loss_angstrom: float


def node_geometry(batch) -> tuple[Tensor, Tensor, Tensor]:
    """(stress (n,3,3) GPa, unit tangent (n,3), frame (n,3,3)) at the nodes of a graph_schema batch."""
    return node_stress(batch), node_tangent(batch), batch[S.NODE].frame.float()


@dataclass(frozen=True)
class PhenomenologicalHParams:
    """The law's one choice before fitting: the sign of the force (the data's Burgers convention); one member."""

    sign: float = 1.0
    members: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


class PhenomenologicalMobility(nn.Module):
    """The baseline law with positive parameters stored as logarithms."""

    LAW_NAME = "phenomenological"

    def __init__(self, sign: float | PhenomenologicalHParams = 1.0):
        super().__init__()
        self.hp = sign if isinstance(sign, PhenomenologicalHParams) else PhenomenologicalHParams(float(sign))
        self.log_edge_drag0 = nn.Parameter(torch.tensor(-1.0))
        self.log_edge_drag1 = nn.Parameter(torch.tensor(-2.0))
        self.log_screw_mobility0 = nn.Parameter(torch.tensor(0.0))
        self.log_screw_activation = nn.Parameter(torch.tensor(-3.0))
        self.register_buffer("sign", torch.tensor(float(self.hp.sign)))
        self.register_buffer("active", torch.ones(1, dtype=torch.bool))

    def forward(self, batch) -> dict[str, Tensor]:
        """{"dx": Cartesian nodal displacements (1, n, 3) Angstrom over each graph's dt_ps} (one member)."""
        return {"dx": self.displacement(batch)[None]}

    def displacement(self, batch) -> Tensor:
        """Cartesian nodal displacements (n, 3) Angstrom over each graph's dt_ps."""
        stress, xi, frame = node_geometry(batch)
        b_hat, n_hat = frame[:, 0], frame[:, 1]
        f = torch.cross(torch.einsum("nab,nb->na", stress, b_hat), xi, dim=-1)
        f = f - (f * n_hat).sum(-1, keepdim=True) * n_hat
        temp = batch[S.NODE].temperature_k.float().clamp_min(1e-3)
        cos2 = (xi * b_hat).sum(-1) ** 2
        m_edge = 1.0 / (self.log_edge_drag0.exp() + self.log_edge_drag1.exp() * temp / 300.0)
        m_screw = self.log_screw_mobility0.exp() * torch.exp(-self.log_screw_activation.exp() / (K_B_EV_PER_K * temp))
        mobility = cos2 * m_screw + (1 - cos2) * m_edge
        dt = _node_dt(batch, xi.shape[0])
        return self.sign * (dt * mobility)[:, None] * f

    def fitted(self, train_loss: float) -> BaselineFit:
        with torch.no_grad():
            return BaselineFit(float(self.log_edge_drag0.exp()), float(self.log_edge_drag1.exp()),
                               float(self.log_screw_mobility0.exp()), float(self.log_screw_activation.exp()),
                               float(self.sign), train_loss)


def _fit_one(batch, sign: float, steps: int, lr: float) -> tuple[PhenomenologicalMobility, float]:
    law = PhenomenologicalMobility(sign)
    opt = torch.optim.Adam(law.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = displacement_loss(batch, law.displacement(batch)).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return law, float(displacement_loss(batch, law.displacement(batch)).mean())


def fit_baseline(batch, steps: int = 300, lr: float = 0.05) -> tuple[PhenomenologicalMobility, BaselineFit]:
    """Fit the law to a batch of training graphs by minimizing the mean symmetric loss (Angstrom), both signs."""
    if steps < 1:
        raise ValueError(f"baseline fit steps={steps}: allowed >= 1")
    best = min((_fit_one(batch, s, steps, lr) for s in (1.0, -1.0)), key=lambda r: r[1])
    return best[0], best[0].fitted(best[1])


def load_baseline(path: str | Path) -> PhenomenologicalMobility:
    """The fitted law from the ``baseline.json`` the train stage writes (a BaselineFit's fields)."""
    import json

    fit = json.loads(Path(path).read_text())
    law = PhenomenologicalMobility(sign=fit["sign"])
    with torch.no_grad():
        law.log_edge_drag0.fill_(torch.tensor(fit["edge_drag0"]).log())
        law.log_edge_drag1.fill_(torch.tensor(fit["edge_drag1"]).log())
        law.log_screw_mobility0.fill_(torch.tensor(fit["screw_mobility0"]).log())
        law.log_screw_activation.fill_(torch.tensor(fit["screw_activation_ev"]).log())
    return law
