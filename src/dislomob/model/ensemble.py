"""Ensemble use of a law: top-50% member selection, predictive mean and variance (paper Eq. 6-7), relative
uncertainty of a trajectory, saving and loading any registered law (dislomob.model.laws), and the PI-GNN's
member cut and warm starts.

Displacements in Angstrom; variances in Angstrom^2.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

from dislomob.atomic import save_torch
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams

ENSEMBLE_FORMAT_VERSION = 3  # 2: glide_only F-net (2 outputs); 3: Peach-Koehler force, invariant inputs


@torch.no_grad()
def select_top(model: EnsemblePIGNN, val_loss: Tensor, fraction: float = 0.5) -> Tensor:
    """Mark the best ``fraction`` of members (lowest validation loss, non-finite last) active; return their indices."""
    if val_loss.shape != (model.hp.members,):
        raise ValueError(f"val_loss shape {tuple(val_loss.shape)}: expected ({model.hp.members},)")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction}: allowed 0 < fraction <= 1")
    k = max(1, int(round(fraction * model.hp.members)))
    score = torch.where(torch.isfinite(val_loss), val_loss, torch.full_like(val_loss, float("inf")))
    best = torch.argsort(score, stable=True)[:k]
    model.active.zero_()
    model.active[best] = True
    return best


def active_state_dict(model: EnsemblePIGNN) -> tuple[PIGNNHParams, dict[str, Tensor]]:
    """Hyperparameters and state dict of ``model`` cut to its active members: every member-stacked weight keeps
    their rows (a stacked trunk holds the F, B and E members one block of ``members`` after the other)."""
    idx = torch.nonzero(model.active).reshape(-1)
    if idx.numel() == 0:
        raise ValueError("no active ensemble member: run select_top first")
    m = model.hp.members
    stacked = torch.cat([idx, idx + m, idx + 2 * m])
    out = {}
    for key, value in model.state_dict().items():
        if key == "active":
            value = torch.ones(idx.numel(), dtype=torch.bool)
        elif value.dim() >= 2:  # GroupedLinear weight (G, in, out) and bias (G, out)
            value = value[stacked] if value.shape[0] == 3 * m else value[idx] if value.shape[0] == m else value
        out[key] = value
    return dataclasses.replace(model.hp, members=int(idx.numel())), out


def active_members(model: EnsemblePIGNN) -> EnsemblePIGNN:
    """A model of ``model``'s active members only (same predictive mean and variance, less work), same dtype."""
    hp, state = active_state_dict(model)
    dtype = next(iter(model.parameters())).dtype
    small = EnsemblePIGNN(hp).to(dtype)
    small.load_state_dict(state, strict=True)
    return small


def predictive(dx: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (n, 3) and variance (n, 3) over the active members of per-member displacements dx (M, n, 3) (Eq. 6-7)."""
    sel = dx[active]
    if sel.shape[0] == 0:
        raise ValueError("no active ensemble member: run select_top first")
    mean = sel.mean(0)
    return mean, ((sel - mean) ** 2).mean(0)


def relative_uncertainty(mean: Tensor, var: Tensor) -> float:
    """Averaged single-step predictive standard deviation relative to the mean |dx| over the given nodes."""
    sigma = var.sum(-1).clamp_min(0).sqrt().mean()
    mu = mean.norm(dim=-1).mean()
    return float(sigma / mu.clamp_min(1e-12))


def save_ensemble(model: torch.nn.Module, path: str | Path, extra: dict | None = None) -> None:
    """Write the law's registry name (dislomob.model.laws), hyperparameters, weights, scales and active members
    atomically (loadable with weights_only=True)."""
    from dislomob.model.laws import law_name

    payload = {"format_version": ENSEMBLE_FORMAT_VERSION, "law": law_name(model), "hparams": model.hp.as_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "extra": extra or {}}
    save_torch(path, payload)  # identical content -> identical bytes (keep timings out of ``extra``)


def load_ensemble(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(law, extra) from a file written by :func:`save_ensemble`, built through the law registry (a file without a
    law name is a ``pignn`` ensemble, as every file before the registry)."""
    from dislomob.errors import InputFileError

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"ensemble file {p} not found")
    try:
        data = torch.load(p, weights_only=True)
    except Exception as err:  # truncated / empty / junk: OSError, EOFError, KeyError, RuntimeError, ...
        what = " ".join(str(err).split())[:200]
        raise InputFileError(f"{p}: unreadable ensemble file ({p.stat().st_size} bytes; {type(err).__name__}: "
                             f"{what})") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != ENSEMBLE_FORMAT_VERSION:
        raise InputFileError(f"{p}: ensemble format_version {version} != {ENSEMBLE_FORMAT_VERSION}")
    from dislomob.model.laws import build_law

    try:
        model = build_law(str(data.get("law", "pignn")), data["hparams"])
        model.load_state_dict(data["state_dict"])
    except Exception as err:
        raise InputFileError(f"{p}: damaged ensemble file ({type(err).__name__}: {' '.join(str(err).split())[:200]})") from None
    return model, data.get("extra", {})


@torch.no_grad()
def warm_start(model: torch.nn.Module, previous: torch.nn.Module) -> None:
    """Copy a previous law's weights and scales into ``model`` (same law; for the PI-GNN same members, widths,
    depth; for another law the same hyperparameters but the seed).

    All members become active again; the previous scales are kept so the weights keep their meaning.
    """
    a, b = model.hp, previous.hp
    keys = (("members", "node_in", "gp_in", "net_widths", "depth", "glide_only") if isinstance(model, EnsemblePIGNN)
            else [k for k in a.as_dict() if k != "seed"])
    for key in keys:
        if getattr(a, key) != getattr(b, key):
            raise ValueError(f"warm start needs equal {key}: model has {getattr(a, key)}, previous has {getattr(b, key)}")
    model.load_state_dict(previous.state_dict())
    if hasattr(model, "active"):
        model.active.fill_(True)
