"""Symmetric node-to-segment loss: exactness against a brute-force loop, invariances, batching, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from dislomob.model.loss import Polylines, displacement_loss, line_distance, relative_error, symmetric_distance
from model_helpers import circle, glide_cell, loop_graph, random_rotation, straight_graph, straight_line, torch_one_thread  # noqa: F401 (autouse fixture)


def brute_point_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray, cell: np.ndarray) -> float:
    """Eq. 3 literally: projection if the foot is on the segment, else the nearer end; all 27 images."""
    best = math.inf
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            for k in (-1, 0, 1):
                off = i * cell[0] + j * cell[1] + k * cell[2]
                aa, bb = a + off, b + off
                e = bb - aa
                u = float(np.dot(p - aa, e) / np.dot(e, e))
                if 0.0 <= u <= 1.0:
                    d = float(np.linalg.norm(p - (aa + u * e)))
                else:
                    d = min(float(np.linalg.norm(p - aa)), float(np.linalg.norm(p - bb)))
                best = min(best, d)
    return best


def brute_line_distance(p1: np.ndarray, segs2: list[tuple[np.ndarray, np.ndarray]], cell: np.ndarray) -> float:
    total = 0.0
    for p in p1:
        total += min(brute_point_segment(p, a, b, cell) for a, b in segs2) ** 2
    return math.sqrt(total)


def _polyline(n: int, period_ok: bool, rng: np.random.Generator, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if period_ok:
        nodes, period = straight_line(cell, n, rng.uniform(0, 20, 3), wiggle=3.0)
        return nodes + rng.normal(scale=1.0, size=nodes.shape), period
    nodes, period = circle(rng.uniform(6, 12), n, rng.uniform(15, 25, 3))
    return nodes + rng.normal(scale=1.0, size=nodes.shape), period


def _lines(n: int, period: np.ndarray, offset: int = 0, graph: int = 0) -> tuple[Polylines, np.ndarray]:
    src = torch.arange(n) + offset
    dst = torch.roll(src, -1)
    shift = torch.zeros(n, 3, dtype=torch.float64)
    shift[-1] = torch.as_tensor(period)
    return Polylines(src, dst, shift, torch.full((n,), graph)), shift.numpy()


def _segs(nodes: np.ndarray, period: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    ends = np.roll(nodes, -1, axis=0)
    ends[-1] = ends[-1] + period
    return list(zip(nodes, ends))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_equals_brute_force_on_random_lines(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cell = glide_cell(rng.uniform(0, 180), length=35.0, width=40.0, height=40.0)
    periodic = seed % 2 == 0
    n1, n2 = rng.integers(4, 9), rng.integers(4, 9)
    x1, per1 = _polyline(int(n1), periodic, rng, cell)
    x2, per2 = _polyline(int(n2), periodic, rng, cell)
    x2 = x2 + rng.uniform(-3, 3, 3) + rng.integers(-1, 2) * cell[0]  # a periodic image far away
    l1, _ = _lines(len(x1), per1)
    l2, _ = _lines(len(x2), per2)
    c = torch.as_tensor(cell)[None]
    got = symmetric_distance(torch.as_tensor(x1), l1, torch.as_tensor(x2), l2, c)
    want = 0.5 * (brute_line_distance(x1, _segs(x2, per2), cell) + brute_line_distance(x2, _segs(x1, per1), cell))
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_zero_for_identical_lines_and_symmetric() -> None:
    rng = np.random.default_rng(5)
    cell = glide_cell(40.0)
    x1, per1 = _polyline(7, True, rng, cell)
    x2, per2 = _polyline(5, True, rng, cell)
    l1, _ = _lines(7, per1)
    l2, _ = _lines(5, per2)
    c = torch.as_tensor(cell)[None]
    t1, t2 = torch.as_tensor(x1), torch.as_tensor(x2)
    assert float(symmetric_distance(t1, l1, t1, l1, c)[0]) == pytest.approx(0.0, abs=1e-9)
    d12 = symmetric_distance(t1, l1, t2, l2, c)
    d21 = symmetric_distance(t2, l2, t1, l1, c)
    assert float(d12[0]) > 0.5
    assert float(d12[0]) == pytest.approx(float(d21[0]), rel=1e-12)


def test_unchanged_when_target_resampled_on_the_same_line() -> None:
    """A straight target line sampled with 5 or 13 nodes: the predicted-to-target part is the same,
    and with the prediction lying on the target line the loss is zero for both samplings."""
    cell = glide_cell(70.0)
    origin = np.array([3.0, 2.0, 10.0])
    coarse, per = straight_line(cell, 5, origin)
    fine, _ = straight_line(cell, 13, origin + 0.37 * cell[1])
    pred, _ = straight_line(cell, 8, origin + 0.11 * cell[1])
    c = torch.as_tensor(cell)[None]
    lp, _ = _lines(8, per)
    for tgt in (coarse, fine):
        lt, _ = _lines(len(tgt), per)
        assert float(symmetric_distance(torch.as_tensor(tgt), lt, torch.as_tensor(pred), lp, c)[0]) < 1e-9
    moved = pred + 2.5 * cell[0] / np.linalg.norm(cell[0])
    pred_to_target, both = [], []
    for tgt in (coarse, fine):
        lt, _ = _lines(len(tgt), per)
        start, vec = lt.segment_vectors(torch.as_tensor(tgt), c)
        pred_to_target.append(float(line_distance(torch.as_tensor(moved), lp.batch, start, vec, lt.batch, c)[0]))
        both.append(float(symmetric_distance(torch.as_tensor(tgt), lt, torch.as_tensor(moved), lp, c)[0]))
    # l(D_pred, D_gt) does not see the target's sampling: sqrt(8) * 2.5 Angstrom for both
    assert pred_to_target == pytest.approx([2.5 * math.sqrt(8)] * 2, rel=1e-9)
    # Eq. 4 sums squares over nodes, so l(D_gt, D_pred) grows as sqrt(n_target)
    assert both[0] == pytest.approx(0.5 * 2.5 * (math.sqrt(5) + math.sqrt(8)), rel=1e-9)
    assert both[1] == pytest.approx(0.5 * 2.5 * (math.sqrt(13) + math.sqrt(8)), rel=1e-9)


def test_batched_graphs_of_different_sizes_equal_one_by_one() -> None:
    graphs = [straight_graph(30.0, 0.4, 300.0, n=5, wiggle=1.0), loop_graph(12.0, 0.6, 500.0, n=11),
              straight_graph(120.0, 0.2, 700.0, n=9)]
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    dx = torch.randn(batch["node"].pos.shape, generator=torch.Generator().manual_seed(0))
    together = displacement_loss(batch, dx)
    one_by_one, start = [], 0
    for g in graphs:
        n = g["node"].pos.shape[0]
        one_by_one.append(float(displacement_loss(g, dx[start:start + n])[0]))
        start += n
    assert together.shape == (3,)
    assert together.tolist() == pytest.approx(one_by_one, rel=1e-5)
    # leading ensemble dimension: two members at once
    stacked = displacement_loss(batch, torch.stack([dx, torch.zeros_like(dx)]))
    assert stacked.shape == (2, 3)
    assert stacked[0].tolist() == pytest.approx(together.tolist(), rel=1e-6)


def test_true_displacement_gives_zero_loss_and_relative_error() -> None:
    g = straight_graph(60.0, 0.5, 300.0, n=6)
    dx_true = torch.einsum("nij,ni->nj", g["node"].frame, g["node"].y)
    assert float(displacement_loss(g, dx_true)[0]) < 1e-3
    assert float(relative_error(g, torch.zeros_like(dx_true))[0]) == pytest.approx(1.0)
    assert float(relative_error(g, 0.5 * dx_true)[0]) == pytest.approx(0.5, rel=1e-3)


def test_rigid_motion_leaves_loss_unchanged() -> None:
    rot = random_rotation(3)
    g = straight_graph(50.0, 0.5, 300.0, n=7, wiggle=2.0)
    h = straight_graph(50.0, 0.5, 300.0, n=7, wiggle=2.0, rotation=rot, translation=np.array([3.0, -7.0, 11.0]))
    dx = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = displacement_loss(g, dx)
    b = displacement_loss(h, dx @ torch.as_tensor(rot).T)
    assert float(a[0]) == pytest.approx(float(b[0]), rel=1e-5)


def test_gradcheck_small_case() -> None:
    rng = np.random.default_rng(9)
    cell = glide_cell(80.0, length=30.0, width=30.0, height=30.0)
    x1, per1 = _polyline(4, True, rng, cell)
    x2, per2 = _polyline(5, True, rng, cell)
    l1, _ = _lines(4, per1)
    l2, _ = _lines(5, per2)
    c = torch.as_tensor(cell)[None]
    t1 = torch.as_tensor(x1).requires_grad_(True)
    t2 = torch.as_tensor(x2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: symmetric_distance(a, l1, b, l2, c), (t1, t2))


def test_graph_without_segments_is_refused() -> None:
    pts = torch.zeros(2, 3, dtype=torch.float64)
    lines = Polylines(torch.tensor([0]), torch.tensor([1]), None, torch.tensor([0, 1]))
    cell = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1) * 10
    with pytest.raises(ValueError, match="graph 1 has points but no segments"):
        symmetric_distance(pts, lines, pts, lines, cell)


def test_nan_position_propagates_to_the_loss() -> None:
    graphs = [straight_graph(30.0, 0.4, 300.0, n=5), straight_graph(60.0, 0.4, 300.0, n=5)]
    batch = next(iter(DataLoader(graphs, batch_size=2)))
    batch["target"].pos[7, 1] = float("nan")
    loss = displacement_loss(batch, torch.zeros_like(batch["node"].pos))
    assert bool(torch.isfinite(loss[0])) and bool(torch.isnan(loss[1]))


@pytest.mark.parametrize("spread", [0.3, 30.0])
def test_nearest_segment_search_equals_differentiating_the_full_minimum(spread: float) -> None:
    """The loss differentiates only the distance to the nearest segment; values and gradients equal those
    of torch.amin over every segment, for ensemble members close together and far apart."""
    from dislomob.model.loss import _segment_sq, batch_lines, minimum_image, node_to_line_sq

    graphs = [loop_graph(25.0, 0.5, 300.0, n=24), straight_graph(40.0, 0.4, 300.0, n=18, wiggle=2.0)]
    batch = next(iter(DataLoader(graphs, batch_size=2)))
    nodes, targets, cell = batch_lines(batch)
    gen = torch.Generator().manual_seed(4)
    base = batch["node"].pos.double()
    dx = (spread * torch.randn((5,) + base.shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
    start, vec = nodes.segment_vectors(base + dx, cell.double())
    tgt = batch["target"].pos.double().expand(5, -1, -1)
    seg_graph = nodes.batch[nodes.src]
    d2 = node_to_line_sq(tgt, targets.batch, start, vec, seg_graph, cell.double())
    # reference: every (point, segment) pair of the same graph in autograd, minimum image per pair
    same = targets.batch[:, None] == seg_graph[None, :]
    d0 = start[:, None, :, :] - tgt[:, :, None, :]
    mean_d0 = d0.detach().mean(0).reshape(-1, 3)
    graph_of_pair = targets.batch[:, None].expand(same.shape).reshape(-1)
    shift = (mean_d0 - minimum_image(mean_d0, cell.double(), graph_of_pair)).reshape(d0.shape[1:])
    ref = torch.amin(_segment_sq(d0 - shift, vec[:, None], same), dim=-1)
    (g, ) = torch.autograd.grad(d2.sum(), dx, retain_graph=True)
    (g_ref, ) = torch.autograd.grad(ref.sum(), dx)
    assert torch.allclose(d2, ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(g, g_ref, rtol=1e-10, atol=1e-10)


def test_periodic_image_follows_the_true_displacement_not_the_prediction() -> None:
    """A line that moved 0.6 of the cell: the backward nearest image (-0.4 cell) is not a free answer."""
    import numpy as np

    from dislomob import graph_schema as S
    from dislomob.model.loss import displacement_loss
    from model_helpers import FRAME, glide_cell, line_graph, shear_stress, straight_line

    cell = glide_cell(90.0)  # rows: glide direction x 60 A, line x 40 A, normal x 80 A
    glide = cell[0] / np.linalg.norm(cell[0])
    line = straight_line(cell, 6, np.array([5.0, 1.0, 20.0]))
    step = 0.6 * np.linalg.norm(cell[0])
    later = (line[0] + step * glide, line[1])
    g = line_graph([line], [later], cell, shear_stress(0.5), 300.0)
    g[S.NODE].y = torch.as_tensor(np.tile(FRAME @ (step * glide), (6, 1)), dtype=torch.float32)  # unwrapped by featurize
    forward = torch.as_tensor(np.tile(step * glide, (6, 1)), dtype=torch.float32)
    backward = forward - torch.as_tensor(cell[0], dtype=torch.float32)  # the same target line, one image back
    assert float(displacement_loss(g, forward)) < 1e-3
    assert float(displacement_loss(g, backward)) > 0.5 * np.sqrt(6) * np.linalg.norm(cell[0])
    del g[S.NODE].y  # without the true displacement the nearest image of the prediction is taken: both look right
    assert float(displacement_loss(g, backward)) < 1e-3
