"""PI-GNN ensemble: invariance under rigid motions, vectorized members vs a per-member reference,
physics-layer constraints, aggregation paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from dislomob import graph_schema as S
from dislomob.features.invariants import graph_features
from dislomob.model.heterosage import MeanAggregation, mean_adjacency
from dislomob.model.pignn import K_B_EV_PER_K, EnsemblePIGNN, PIGNNHParams
from model_helpers import loop_graph, random_rotation, straight_graph, torch_one_thread  # noqa: F401 (autouse fixture)


def _model(graphs, members: int = 3, width: int = 8, depth: int = 2, seed: int = 0,
           glide_only: bool = True) -> EnsemblePIGNN:
    hp = PIGNNHParams(members=members, width=width, depth=depth, seed=seed, energy_scale_ev=0.05,
                      glide_only=glide_only)
    model = EnsemblePIGNN(hp)
    feats = [graph_features(h) for h in graphs]
    model.fit_scales(torch.cat([f[0] for f in feats]), torch.cat([f[1] for f in feats]), speed_rms=2.0, force_rms=0.4)
    return model


def test_rigid_motion_rotates_displacements_and_changes_nothing_else() -> None:
    rot = random_rotation(11)
    shift = np.array([13.0, -4.0, 7.5])
    g = straight_graph(35.0, 0.6, 400.0, n=7, wiggle=2.0)
    h = straight_graph(35.0, 0.6, 400.0, n=7, wiggle=2.0, rotation=rot, translation=shift)
    model = _model([g])
    a, b = model(g), model(h)
    r = torch.as_tensor(rot, dtype=torch.float32)
    scale = float(a["dx"].abs().max())
    assert scale > 1e-3
    assert torch.allclose(b["dx"], a["dx"] @ r.T, atol=1e-5 * max(scale, 1.0))
    for key in ("dx_local", "force", "drag", "energy_ev"):
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-5), key
    # a model that read Cartesian positions would fail this: the positions really moved
    assert float((h[S.NODE].pos - g[S.NODE].pos).abs().max()) > 1.0


def _tangent_by_hand(g, i: int) -> torch.Tensor:
    """Unit tangent at node i: mean of the unit vectors of the segment into it and the segment out of it."""
    src, dst = g[S.NODE_SEG].edge_index.tolist()
    shift = g[S.NODE_SEG].shift
    pos = g[S.NODE].pos
    t = torch.zeros(3)
    for k, (a, b) in enumerate(zip(src, dst)):
        if i in (a, b):
            v = pos[b] + shift[k] - pos[a]
            t += v / v.norm()
    return t / t.norm()


def _reference_member(model: EnsemblePIGNN, g, m: int) -> torch.Tensor:
    """Member m computed alone with plain loops over edges and dense per-member weights."""
    hp, mm = model.hp, model.hp.members
    node_x, gp_x = graph_features(g)
    x_node = (node_x - model.node_mean) / model.node_std
    x_gp = (gp_x - model.gp_mean) / model.gp_std
    g2n, n2g = g[S.GP_TO_NODE].edge_index, g[S.NODE_TO_GP].edge_index

    def mean_over(src_feat, edges, n_dst):
        out = torch.zeros(n_dst, src_feat.shape[1])
        cnt = torch.zeros(n_dst)
        for s, d in edges.T.tolist():
            out[d] += src_feat[s]
            cnt[d] += 1
        return out / cnt.clamp_min(1)[:, None]

    outs = []
    for net in range(3):
        grp = net * mm + m
        hn, hg = x_node, x_gp
        for layer in model.trunk.layers:
            agg = mean_over(hg, g2n, hn.shape[0])
            hn_new = torch.relu(agg @ layer.node_from_gp.weight[grp] + layer.node_from_gp.bias[grp]
                                + hn @ layer.node_self.weight[grp])
            if layer.update_gp:
                agg = mean_over(hn_new, n2g, hg.shape[0])
                hg = torch.relu(agg @ layer.gp_from_node.weight[grp] + layer.gp_from_node.bias[grp]
                                + hg @ layer.gp_self.weight[grp])
            hn = hn_new
        outs.append(hn)
    gain = torch.nn.functional.softplus(outs[0] @ model.head_f.weight[m] + model.head_f.bias[m]) * model.speed_scale
    f_cart = torch.zeros(gain.shape[0], 3)
    for i in range(gain.shape[0]):  # Peach-Koehler force along n x xi, then xi x (n x xi), scaled per axis
        xi = _tangent_by_hand(g, i)
        gps = g[S.GP_TO_NODE].edge_index[0][g[S.GP_TO_NODE].edge_index[1] == i]
        sigma = g[S.GP].stress_gpa[gps].mean(0)
        pk = torch.linalg.cross(sigma @ g[S.NODE].frame[i, 0], xi) / model.force_scale
        m_hat = torch.linalg.cross(g[S.NODE].frame[i, 1], xi)
        m_hat = m_hat / m_hat.norm()
        f_cart[i] = gain[i, 0] * (pk @ m_hat) * m_hat
        if not hp.glide_only:
            c_hat = torch.linalg.cross(xi, m_hat)
            f_cart[i] += gain[i, 1] * (pk @ c_hat) * c_hat
    f = torch.einsum("nij,nj->ni", g[S.NODE].frame, f_cart)
    b = torch.nn.functional.softplus(outs[1] @ model.head_b.weight[m] + model.head_b.bias[m])[:, 0] + hp.drag_floor
    e = hp.energy_scale_ev * torch.nn.functional.softplus(outs[2] @ model.head_e.weight[m] + model.head_e.bias[m])[:, 0]
    t = g[S.NODE].temperature_k
    local = float(g.dt_ps) * (f / b[:, None]) * torch.exp(-e / (K_B_EV_PER_K * t))[:, None]
    return torch.einsum("nij,ni->nj", g[S.NODE].frame, local)


@pytest.mark.parametrize("glide_only", [True, False])
def test_vectorized_members_equal_per_member_reference(glide_only: bool) -> None:
    g = loop_graph(15.0, 0.5, 300.0, n=10)
    model = _model([g], members=4, width=6, depth=3, glide_only=glide_only)
    with torch.no_grad():
        dx = model(g)["dx"]
        for m in range(4):
            assert torch.allclose(dx[m], _reference_member(model, g, m), atol=1e-5, rtol=1e-4)
    assert float((dx[0] - dx[1]).abs().max()) > 1e-4  # different seeds give different members


def test_batched_forward_equals_graph_by_graph() -> None:
    graphs = [straight_graph(20.0, 0.3, 300.0, n=5), loop_graph(10.0, 0.8, 600.0, n=9),
              straight_graph(150.0, 0.5, 900.0, n=8, dt_ps=0.5)]
    model = _model(graphs)
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    with torch.no_grad():
        together = model(batch)["dx"]
        apart = torch.cat([model(g)["dx"] for g in graphs], dim=1)
    assert torch.allclose(together, apart, atol=1e-6)


def test_physics_layer_constraints_and_time_step() -> None:
    g = straight_graph(60.0, 0.5, 300.0, n=6)
    model = _model([g], members=5)
    with torch.no_grad():
        out = model(g)
        assert bool((out["drag"] > 0).all()) and bool((out["energy_ev"] >= 0).all())
        # the force and the motion are perpendicular to the line (nothing along the tangent)
        xi = torch.stack([_tangent_by_hand(g, i) for i in range(g[S.NODE].num_nodes)])
        big = float(out["dx"].abs().max())
        assert big > 0 and float((out["dx"] * xi).sum(-1).abs().max()) < 1e-5 * big
        # glide only: nor along the slip plane normal
        glide = _model([g], members=5, glide_only=True)
        dx = glide(g)["dx"]
        assert float((dx * g[S.NODE].frame[:, 1]).sum(-1).abs().max()) < 1e-5 * float(dx.abs().max())
        expect = (out["force"] / out["drag"][..., None]) * torch.exp(
            -out["energy_ev"] / (K_B_EV_PER_K * 300.0))[..., None]
        assert torch.allclose(out["dx_local"], expect, rtol=1e-5)
        g.dt_ps = torch.tensor([2.0])
        assert torch.allclose(model(g)["dx"], 2.0 * out["dx"], rtol=1e-5)


def test_sparse_mean_aggregation_equals_edge_index_path() -> None:
    gen = torch.Generator().manual_seed(0)
    edges = torch.stack([torch.randint(0, 7, (20,), generator=gen), torch.randint(0, 5, (20,), generator=gen)])
    x = torch.randn(7, 3, 4, generator=gen)
    agg = MeanAggregation()
    a = agg(x, edges, 5)
    b = agg(x, mean_adjacency(edges, 7, 5), 5)
    assert torch.allclose(a, b, atol=1e-6)
    want = torch.stack([x[edges[0][edges[1] == d]].mean(0) if (edges[1] == d).any() else torch.zeros(3, 4)
                        for d in range(5)])
    assert torch.allclose(a, want, atol=1e-6)


def test_wrong_feature_width_is_refused() -> None:
    g = straight_graph(60.0, 0.5, 300.0, n=6)
    hp = PIGNNHParams(members=2, node_in=graph_features(g)[0].shape[1] + 1)
    with pytest.raises(ValueError, match="feature width"):
        EnsemblePIGNN(hp)(g)
    with pytest.raises(ValueError, match="members=0"):
        PIGNNHParams(members=0, node_in=3, gp_in=3)
