"""Physics-informed GNN ensemble: F-, B- and E-nets for M members evaluated in one pass (paper Eq. 2).

dx_local = dt * F / B * exp(-E / (k_B T)) in each node's local frame (b_hat, n_hat, s_hat), then
dx = frame^T dx_local in Cartesian coordinates. Units: dx in Angstrom, dt in ps, F in Angstrom/ps
(a drive already divided by a reference drag), B dimensionless (> 0), E in eV (>= 0), T in K.

The force is the local Peach-Koehler force f = (sigma . b_hat) x xi (GPa; sigma the mean stress of the
node's Gauss points, xi its unit tangent) resolved on the node's motion axes, both perpendicular to the
line: m_hat = n_hat x xi (glide) and c_hat = xi x m_hat (out of the plane: cross-slip; dropped with
``glide_only``). The F-net only scales each component by a learned non-negative factor, and the
B- and E-nets see only symmetry-invariant inputs (dislomob.features.invariants), so by construction
(xi, b) -> (-xi, -b) gives the same velocity, a reversed resolved shear gives the reversed glide, and
zero stress gives zero motion, whatever the weights. The 3*M networks (F, B, E for every member)
share one stacked HeteroSAGE computation; with per-net widths (``width_f``, ``width_b``, ``width_e``, e.g.
from the ``tune`` stage) that differ, each of F, B and E stacks its M members in a trunk of its own width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as tf
from torch import Tensor, nn

from dislomob import graph_schema as S
from dislomob.features.invariants import GP_FEATURE_NAMES, NODE_FEATURE_NAMES, graph_features
from dislomob.model.heterosage import GroupedLinear, HeteroSAGE, mean_adjacency
from dislomob.model.line_geometry import motion_axes, node_stress, node_tangent

K_B_EV_PER_K = 8.617333262e-5
NETS = ("F", "B", "E")
WIDTH_KEYS = ("width_f", "width_b", "width_e")


@dataclass(frozen=True)
class PIGNNHParams:
    """Sizes and seeds of an ensemble; ``node_in``/``gp_in`` are the widths of dislomob.features.invariants."""

    members: int
    node_in: int = len(NODE_FEATURE_NAMES)
    gp_in: int = len(GP_FEATURE_NAMES)
    width: int = 20
    depth: int = 2
    seed: int = 0
    energy_scale_ev: float = 0.01
    drag_floor: float = 1e-3
    glide_only: bool = False
    width_f: int | None = None
    width_b: int | None = None
    width_e: int | None = None

    def __post_init__(self) -> None:
        for key in ("members", "node_in", "gp_in", "width", "depth"):
            if getattr(self, key) < 1:
                raise ValueError(f"PIGNNHParams.{key}={getattr(self, key)}: allowed >= 1")
        for key in WIDTH_KEYS:
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"PIGNNHParams.{key}={getattr(self, key)}: allowed >= 1 or None (= width)")
        if not (self.energy_scale_ev > 0 and self.drag_floor > 0):
            raise ValueError(f"energy_scale_ev={self.energy_scale_ev} and drag_floor={self.drag_floor} must be > 0")

    @property
    def net_widths(self) -> tuple[int, int, int]:
        """Hidden widths of the F-, B- and E-nets (a per-net width of None takes ``width``)."""
        return tuple(self.width if w is None else int(w) for w in (self.width_f, self.width_b, self.width_e))

    def as_dict(self) -> dict:
        """Field values; per-net widths left at None are omitted (files keep the layout from before them)."""
        return {k: v for k, v in asdict(self).items() if not (k in WIDTH_KEYS and v is None)}


def member_seeds(seed: int, net: int, members: int) -> list[int]:
    """Distinct seeds for the ``members`` copies of net ``net`` (0=F, 1=B, 2=E)."""
    return [seed * 10_000 + net * 1_000 + m + 1 for m in range(members)]


def _standardize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    if x.shape[-1] != mean.shape[-1]:
        raise ValueError(f"feature width {x.shape[-1]} differs from the model's {mean.shape[-1]}")
    return (x - mean) / std


class EnsemblePIGNN(nn.Module):
    """M PI-GNN members; ``forward`` returns per-member displacements and the F, B, E outputs."""

    LAW_NAME = "pignn"

    def __init__(self, hp: PIGNNHParams):
        super().__init__()
        self.hp = hp
        m = hp.members
        wf, wb, we = hp.net_widths
        if wf == wb == we:  # one stacked trunk for all 3M nets (the layout of every file before per-net widths)
            seeds = [s for k in range(3) for s in member_seeds(hp.seed, k, m)]
            self.trunk = HeteroSAGE(3 * m, hp.node_in, hp.gp_in, wf, hp.depth, seeds)
            self.trunks = None
        else:  # one trunk per net; group seeds as in the stacked trunk, so a net's weights depend on its width only
            self.trunk = None
            self.trunks = nn.ModuleList([HeteroSAGE(m, hp.node_in, hp.gp_in, w, hp.depth, member_seeds(hp.seed, k, m))
                                         for k, w in enumerate(hp.net_widths)])
        self.head_f = GroupedLinear(m, wf, 1 if hp.glide_only else 2, [s + 7 for s in member_seeds(hp.seed, 0, m)])
        self.head_b = GroupedLinear(m, wb, 1, [s + 7 for s in member_seeds(hp.seed, 1, m)])
        self.head_e = GroupedLinear(m, we, 1, [s + 7 for s in member_seeds(hp.seed, 2, m)])
        self.register_buffer("node_mean", torch.zeros(hp.node_in))
        self.register_buffer("node_std", torch.ones(hp.node_in))
        self.register_buffer("gp_mean", torch.zeros(hp.gp_in))
        self.register_buffer("gp_std", torch.ones(hp.gp_in))
        self.register_buffer("speed_scale", torch.ones(()))
        self.register_buffer("force_scale", torch.ones(()))
        self.register_buffer("active", torch.ones(m, dtype=torch.bool))

    @torch.no_grad()
    def fit_scales(self, node_x: Tensor, gp_x: Tensor, speed_rms: float, force_rms: float = 1.0) -> None:
        """Feature means/stds from training data; ``speed_rms`` (Angstrom/ps) sets the F output scale and
        ``force_rms`` (GPa) the Peach-Koehler force that it corresponds to."""
        if not force_rms > 0:
            raise ValueError(f"force_rms={force_rms} GPa: must be > 0 (training data without stress?)")
        self.force_scale.fill_(float(force_rms))
        for name, x in (("node", node_x), ("gp", gp_x)):
            std = x.std(0) if x.shape[0] > 1 else torch.ones(x.shape[1])
            getattr(self, f"{name}_mean").copy_(x.mean(0))
            getattr(self, f"{name}_std").copy_(torch.where(std > 1e-6 * (1 + x.abs().mean(0)), std, torch.ones_like(std)))
        if not speed_rms > 0:
            raise ValueError(f"speed_rms={speed_rms} Angstrom/ps: must be > 0 (targets without motion?)")
        self.speed_scale.fill_(float(speed_rms))

    def forward(self, batch) -> dict[str, Tensor]:
        """Per-member outputs for a (batched) graph_schema HeteroData, in the dtype of the model's weights.

        Returns dx (M, n, 3) Cartesian Angstrom, dx_local (M, n, 3) in (b, n, s), force (M, n, 3)
        Angstrom/ps, drag (M, n) dimensionless, energy_ev (M, n), all for the ``n`` nodes.
        """
        dtype = self.speed_scale.dtype
        node = batch[S.NODE]
        n_node, m = node.pos.shape[0], self.hp.members
        node_x, gp_x = graph_features(batch, dtype)
        g2n = mean_adjacency(batch[S.GP_TO_NODE].edge_index, gp_x.shape[0], n_node)
        n2g = mean_adjacency(batch[S.NODE_TO_GP].edge_index, n_node, gp_x.shape[0])
        x_node = _standardize(node_x, self.node_mean, self.node_std)
        x_gp = _standardize(gp_x, self.gp_mean, self.gp_std)
        g2n, n2g = g2n.to(dtype), n2g.to(dtype)
        if self.trunk is not None:
            h = self.trunk(x_node, x_gp, g2n, n2g)  # (n, 3M, width)
            h_f, h_b, h_e = h[:, :m], h[:, m:2 * m], h[:, 2 * m:]
        else:
            h_f = self.trunks[0](x_node, x_gp, g2n, n2g)  # (n, M, width of the F-net)
            h_b = self.trunks[1](x_node, x_gp, g2n, n2g)
            h_e = self.trunks[2](x_node, x_gp, g2n, n2g)
        frame = node.frame.to(dtype)
        axes = motion_axes(node_tangent(batch, dtype), frame)  # (n, 2, 3) Cartesian
        pk = peach_koehler(batch, dtype)  # (n, 3) GPa
        k = 1 if self.hp.glide_only else 2
        pk_axes = torch.einsum("nc,nkc->nk", pk, axes[:, :k]) / self.force_scale  # (n, k)
        force, drag, energy = mobility_head(self, h_f, h_b, h_e, pk_axes, axes[:, :k], frame)
        temp = node.temperature_k.to(dtype)[:, None]
        dt = _node_dt(batch, n_node).to(dtype)[:, None]
        dx_local = eq2_factor(dt, energy, drag, temp)[..., None] * force
        dx_local = dx_local.transpose(0, 1)  # (M, n, 3)
        dx = torch.einsum("nij,mni->mnj", frame, dx_local)
        return {"dx": dx, "dx_local": dx_local, "force": force.transpose(0, 1), "drag": drag.T, "energy_ev": energy.T}


def mobility_head(law: nn.Module, h_f: Tensor, h_b: Tensor, h_e: Tensor, pk_axes: Tensor, axes: Tensor,
                  frame: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The F-, B- and E-outputs of Eq. 2 from the nets' node embeddings (n, M, width) of ``law`` (its ``head_f``,
    ``head_b``, ``head_e``, ``speed_scale`` and ``hp``): force (n, M, 3) Angstrom/ps in each node's local frame
    (each resolved Peach-Koehler component ``pk_axes`` (n, k) along ``axes`` (n, k, 3) scaled by a learned
    non-negative gain), drag (n, M) > 0 and energy (n, M) eV >= 0. The training model and the export share it."""
    gain = tf.softplus(law.head_f(h_f)) * law.speed_scale  # (n, M, k) >= 0, Angstrom/ps
    force = torch.einsum("nmk,nk,nkc,nic->nmi", gain, pk_axes, axes, frame)  # (n, M, 3) local
    drag = tf.softplus(law.head_b(h_b)[..., 0]) + law.hp.drag_floor  # (n, M)
    energy = law.hp.energy_scale_ev * tf.softplus(law.head_e(h_e)[..., 0])
    return force, drag, energy


def eq2_factor(prefactor: Tensor | float, energy: Tensor, drag: Tensor, temperature_k: Tensor) -> Tensor:
    """prefactor * exp(-E / (k_B T)) / B of Eq. 2 (T clamped at 1 mK): with the step dt (ps) as prefactor, times the
    force F (Angstrom/ps) it is the displacement (Angstrom); with 1, the velocity per unit force."""
    return prefactor * torch.exp(-energy / (K_B_EV_PER_K * temperature_k.clamp_min(1e-3))) / drag


def peach_koehler(batch, dtype: torch.dtype = torch.float32) -> Tensor:
    """Peach-Koehler force per unit |b| (n, 3) GPa at every node: (sigma . b_hat) x xi with sigma the mean
    Cartesian stress of the node's Gauss points and xi its unit tangent."""
    sb = torch.einsum("nab,nb->na", node_stress(batch, dtype), batch[S.NODE].frame.to(dtype)[:, 0])
    return torch.cross(sb, node_tangent(batch, dtype), dim=-1)


def _node_dt(batch, n_node: int) -> Tensor:
    """Time step (ps) of each node from the graph-level ``dt_ps``."""
    dt = batch.dt_ps.float().reshape(-1)
    nb = getattr(batch[S.NODE], "batch", None)
    if nb is not None:
        return dt[nb]
    if dt.numel() != 1:
        raise ValueError(f"dt_ps has {dt.numel()} values but the nodes carry no batch vector")
    return dt.expand(n_node)


def speed_rms(graphs: list) -> float:
    """RMS nodal speed |y| / dt (Angstrom/ps) of the training targets."""
    total, count = 0.0, 0
    for g in graphs:
        y = g[S.NODE].y.double()
        total += float((y * y).sum()) / float(g.dt_ps.reshape(-1)[0]) ** 2
        count += y.shape[0]
    return (total / max(count, 1)) ** 0.5


def force_rms(graphs: list) -> float:
    """RMS glide component (GPa) of the Peach-Koehler force at the training nodes."""
    total, count = 0.0, 0
    for g in graphs:
        glide = (peach_koehler(g, torch.float64) * motion_axes(node_tangent(g, torch.float64),
                                                                g[S.NODE].frame.double())[:, 0]).sum(-1)
        total += float((glide * glide).sum())
        count += glide.shape[0]
    return (total / max(count, 1)) ** 0.5


def pignn_hparams(tc, seed: int) -> PIGNNHParams:
    """The ensemble's hyperparameters from the ``train`` section (dislomob.config.TrainConfig) and a seed."""
    return PIGNNHParams(members=tc.members, width=tc.width, depth=tc.depth, seed=seed,
                        energy_scale_ev=tc.energy_scale_ev, glide_only=tc.glide_only,
                        width_f=tc.width_f, width_b=tc.width_b, width_e=tc.width_e)


def prepare_pignn(model: EnsemblePIGNN, train_graphs: list) -> None:
    """Fit the feature means and stds and the speed and force scales on the training graphs."""
    feats = [graph_features(h) for h in train_graphs]
    model.fit_scales(torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats]),
                     speed_rms(train_graphs), force_rms(train_graphs))
