"""The mobility-law registry: one name per law architecture, and everything a consumer needs to build, save,
load and use it.

A law is a ``torch.nn.Module`` with a class attribute ``LAW_NAME``, a hyperparameter object ``hp`` (a dataclass
with ``members`` and ``as_dict()``), an optional boolean buffer ``active`` (members, ) of the members that predict,
and ``forward(batch) -> {"dx": (members, n, 3) Cartesian nodal displacements in Angstrom over each graph's
dt_ps, ...}`` on a graph_schema batch. Every consumer goes through this module: training builds a law by
``train.law`` (:func:`new_law`), ``save_ensemble``/``load_ensemble`` store and read the law's name beside its
hyperparameters (files without one are ``pignn``), and ``predict`` (so evaluation, AL scoring, the registry's
pyfunc, ``MobilityLaw`` and the rollouts) only needs the contract above.

Adding a law is one module (the ``nn.Module`` and its hyperparameters) and one :func:`register_law` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from dislomob.config import TrainConfig


@dataclass(frozen=True)
class LawSpec:
    """How to make and use one law: ``model(hp)`` builds it from ``hparams(**dict)``; ``from_config(train, seed)``
    gives the hyperparameters of a new law for training (None: not trained by the train stage);
    ``prepare(model, train_graphs)`` fits data scales before training (optional); ``only_active(model)`` returns
    a smaller law of the active members with the same predictions (optional, for deployment)."""

    name: str
    model: Callable[[Any], nn.Module]
    hparams: Callable[..., Any]
    from_config: Callable[[TrainConfig, int], Any] | None = None
    prepare: Callable[[nn.Module, list[HeteroData]], None] | None = None
    only_active: Callable[[nn.Module], nn.Module] | None = None


_LAWS: dict[str, LawSpec] = {}


def register_law(spec: LawSpec) -> LawSpec:
    """Add ``spec`` to the registry (a name registered twice is an error)."""
    if spec.name in _LAWS and _LAWS[spec.name] is not spec:
        raise ValueError(f"law {spec.name!r} is already registered")
    _LAWS[spec.name] = spec
    return spec


def law_names() -> list[str]:
    """The registered law names, sorted."""
    _builtins()
    return sorted(_LAWS)


def law_spec(name: str) -> LawSpec:
    """The spec registered as ``name``; a clear error naming the registered ones otherwise."""
    _builtins()
    if name not in _LAWS:
        raise ValueError(f"law {name!r} is not registered: allowed {', '.join(sorted(_LAWS))}")
    return _LAWS[name]


def law_name(model: nn.Module) -> str:
    """The registry name of a law instance (its class's ``LAW_NAME``)."""
    name = getattr(type(model), "LAW_NAME", None)
    if not isinstance(name, str):
        raise TypeError(f"{type(model).__name__} is not a registered law: it has no LAW_NAME")
    return name


def build_law(name: str, hparams: dict[str, Any]) -> nn.Module:
    """A law ``name`` with the hyperparameters ``hparams`` (as saved by ``hp.as_dict()``), untrained."""
    spec = law_spec(name)
    return spec.model(spec.hparams(**hparams))


def new_law(tc: TrainConfig, seed: int, train_graphs: list[HeteroData]) -> nn.Module:
    """A fresh law ``tc.law`` for training, with its data scales fitted on ``train_graphs`` where it has any."""
    spec = law_spec(tc.law)
    if spec.from_config is None:
        raise ValueError(f"train.law={tc.law!r} is fitted, not trained by the train stage: allowed "
                         f"{', '.join(n for n in law_names() if _LAWS[n].from_config is not None)}")
    model = spec.model(spec.from_config(tc, seed))
    if spec.prepare is not None:
        spec.prepare(model, train_graphs)
    return model


def only_active(model: nn.Module) -> nn.Module:
    """``model`` cut to its active members where its law knows how (same predictions), else ``model``."""
    spec = law_spec(law_name(model))
    return spec.only_active(model) if spec.only_active is not None else model


_BUILTINS_DONE = False


def _builtins() -> None:
    """Register the project's own laws (lazily: their modules import torch_geometric)."""
    global _BUILTINS_DONE
    if _BUILTINS_DONE:
        return
    _BUILTINS_DONE = True
    from dislomob.model.phenomenological import PhenomenologicalHParams, PhenomenologicalMobility
    from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams, pignn_hparams, prepare_pignn

    def _only_active(model: nn.Module) -> nn.Module:
        from dislomob.model.ensemble import active_members

        return active_members(model)

    register_law(LawSpec("pignn", EnsemblePIGNN, PIGNNHParams, pignn_hparams, prepare_pignn, _only_active))
    register_law(LawSpec("phenomenological", PhenomenologicalMobility, PhenomenologicalHParams))
