"""The ``register`` stage: the chosen ensemble into the MLflow Model Registry, champion or challenger.

1. choose the ensemble (``registry.source``, dislomob.registry.source) and measure its test error on the
   fixed test set (dislomob.registry.champion);
2. in one run of ``registry.experiment``: log it as the pyfunc law model (dislomob.registry.package), with
   the training metrics and params as run metrics/params, and register it under ``registry.model_name``;
   a version with the same content (ensemble file + law config, by SHA-256) is reused, not registered again,
   so the stage is idempotent;
3. tag the version: provenance (git commit, dvc.lock data versions), source, training metrics, params, test
   error, the decision and its reason; move ``champion`` to it when its test error is not worse than the
   current champion's (recomputed on the same test set), else set ``challenger``; the law's sanity checks
   (dislomob.ddd.sanity.check_law on the fixed test runs' MD frames) as ``sanity.json`` in the run and
   ``sanity.*`` tags (pass/fail and the headline numbers) on the version;
4. write ``metrics/register.json`` and ``models/register/`` (the champion's ensemble file, its law config
   and ``model.json`` with its model URI) for later stages; while no version is champion (the first one failed
   its sanity checks) the new version's, with its alias in ``model.json`` and no ``champion_version``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dislomob.atomic import atomic_path, write_json
from dislomob.config import Config
from dislomob.registry.champion import CHAMPION, decide, ensemble_test_error, fixed_test_set
from dislomob.registry.law_config import write_law_config
from dislomob.registry.package import ENSEMBLE_FILE, LAW_CONFIG_FILE, log_law_model, model_artifact_paths
from dislomob.registry.provenance import compact, data_versions, file_sha256, git_tags
from dislomob.registry.source import EnsembleSource, resolve_source

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CONTENT_TAG = "content_sha256"
TAG_VALUE_MAX = 5000
SANITY_KEYS = ("passed", "agree_fraction", "md_agree_fraction", "pass_fraction", "worst", "n_moving")


def registry_uri(cfg: Config) -> str:
    """The registry (and tracking) URI of the stage: ``registry.tracking_uri``, default ``train.tracking_uri``."""
    return cfg.registry.tracking_uri or cfg.train.tracking_uri


def _content_sha(ensemble_path: Path, cfg: Config) -> str:
    with tempfile.TemporaryDirectory(prefix="dislomob-register-") as tmp:
        conf = Path(tmp) / LAW_CONFIG_FILE
        write_law_config(cfg, conf)
        return file_sha256(ensemble_path, conf)


def _version_tags(src: EnsembleSource, cfg: Config, test_error: float, n_test: dict[str, int],
                  lock_path: str | Path) -> dict[str, str]:
    tags = {"source": src.kind, "source_path": str(src.path), "source_detail": compact(src.detail),
            "test_error_median": repr(test_error), "test_trajectories": str(n_test["trajectories"]),
            "test_graphs": str(n_test["graphs"]), **git_tags(), **data_versions(lock_path)}
    tags.update({f"train_metric.{k}": repr(v) for k, v in sorted(src.metrics.items())})
    for section in ("train", "features", "material", "active", "registry"):
        tags[f"params.{section}"] = compact(getattr(cfg, section).model_dump(mode="json"))
    tags["params.seed"] = str(cfg.seed)
    return {k: v if len(v) <= TAG_VALUE_MAX else v[:TAG_VALUE_MAX - 3] + "..." for k, v in tags.items()}


def _plain(o: Any) -> Any:
    """JSON for numpy scalars and arrays (as Python numbers and lists), else the text of the object."""
    return o.tolist() if hasattr(o, "tolist") else str(o)


def sanity_tags(result: dict[str, Any], prefix: str = "sanity") -> dict[str, str]:
    """Version tags of a sanity result (dislomob.ddd.sanity.check_law): every pass/fail and headline number
    (``SANITY_KEYS``) in its nested objects, e.g. ``sanity.consistency.reversal.worst``; lists are left to the
    JSON artifact."""
    tags = {}
    for key, value in result.items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict):
            tags.update(sanity_tags(value, path))
        elif key in SANITY_KEYS and (value is None or isinstance(value, (bool, int, float))):
            tags[path] = str(value).lower() if isinstance(value, bool) or value is None else repr(value)
    return tags


SANITY_NUMBERS = ("worst", "tol", "agree_fraction", "n_moving", "n_pairs")


def failed_sanity(result: dict[str, Any], prefix: str = "") -> str | None:
    """None when a sanity result (dislomob.ddd.sanity.check_law or a part of it) has not failed, else its failed
    parts (the innermost objects with ``passed`` false) with their numbers, e.g. ``consistency.spacing (worst
    0.31, tol 0.1)``."""
    parts = []
    for key, value in result.items():
        if isinstance(value, dict):
            inner = failed_sanity(value, f"{prefix}{key}.")
            if inner is not None:
                parts.append(inner)
    if not parts and result.get("passed") is False:
        numbers = ", ".join(f"{k} {result[k]:.3g}" for k in SANITY_NUMBERS if isinstance(result.get(k), (int, float)))
        parts.append(f"{prefix.rstrip('.') or 'sanity'}" + (f" ({numbers})" if numbers else ""))
    return "; ".join(parts) or None


def _find_version(client: MlflowClient, name: str, content_sha: str) -> ModelVersion | None:
    for mv in client.search_model_versions(f"name='{name}'"):
        if mv.tags.get(CONTENT_TAG) == content_sha:
            return mv
    return None


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version that holds ``alias`` (None: no version does)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _champion_error(client: MlflowClient, reg_uri: str, name: str, test: dict[str, list], cfg: Config,
                    tmp: Path) -> tuple[ModelVersion | None, float | None, str | None]:
    """(champion ModelVersion or None, its test error now, why it could not be evaluated)."""
    from mlflow.exceptions import MlflowException

    from dislomob.errors import DislomobError
    from dislomob.registry.client import download_model

    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None, None
    try:
        local = download_model(f"models:/{name}/{mv.version}", reg_uri, tmp / "champion")
        return mv, ensemble_test_error(model_artifact_paths(local)["ensemble"], test, cfg), None
    except (DislomobError, MlflowException, OSError) as err:
        return mv, None, f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"


def _write_local_copy(client: MlflowClient, name: str, version: str, reg_uri: str, out_dir: Path,
                      tmp: Path, alias: str = CHAMPION) -> dict[str, Any]:
    """models/register/: the ensemble file and law config of ``version`` (the champion, or without one the
    ``alias`` version just registered) as registered, and model.json."""
    from dislomob.registry.client import download_model

    arts = model_artifact_paths(download_model(f"models:/{name}/{version}", reg_uri, tmp / "copy"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for src, dst in ((arts["ensemble"], ENSEMBLE_FILE), (arts["law_config"], LAW_CONFIG_FILE)):
        with atomic_path(out_dir / dst, suffix=Path(dst).suffix) as t:
            shutil.copyfile(src, t)
    mv = client.get_model_version(name, version)
    info = {"model_uri": f"models:/{name}@{alias}", "model_version_uri": f"models:/{name}/{version}", "alias": alias,
            "name": name, "version": version, "registry_uri": reg_uri, "run_id": mv.run_id,
            "source": mv.tags.get("source"), "test_error_median": float(mv.tags["test_error_median"]),
            CONTENT_TAG: mv.tags.get(CONTENT_TAG), "files": {"ensemble": ENSEMBLE_FILE, "law_config": LAW_CONFIG_FILE}}
    write_json(out_dir / "model.json", info)
    return info


def register_ensemble(cfg: Config, src: EnsembleSource, test: dict[str, list], example_network: str | Path,
                      out_dir: str | Path, metrics_path: str | Path, lock_path: str | Path = "dvc.lock",
                      sanity: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Register ``src``'s ensemble judged on the test graphs ``test`` (steps 2-4 of the module docstring);
    ``sanity`` maps the law (MobilityLaw) to its sanity result (None: not run, tag ``sanity.passed`` = not run);
    return what ``metrics_path`` gets."""
    import mlflow
    from mlflow import MlflowClient

    from dislomob.tracking import end_orphaned_runs, ended_on_exit, owner_tags, tracking_setup

    reg_uri, name = registry_uri(cfg), cfg.registry.model_name
    end_orphaned_runs(tracking_setup(reg_uri, cfg.registry.experiment))
    mlflow.set_registry_uri(reg_uri)  # register here, whatever registry the process had been pointed at before
    client = MlflowClient(tracking_uri=reg_uri, registry_uri=reg_uri)
    err = ensemble_test_error(src.path, test, cfg)
    n_test = {"trajectories": len(test), "graphs": sum(len(g) for g in test.values())}
    content = _content_sha(src.path, cfg)
    with tempfile.TemporaryDirectory(prefix="dislomob-register-") as tmp_name:
        tmp = Path(tmp_name)
        champ, champ_err, problem = _champion_error(client, reg_uri, name, test, cfg, tmp)
        existing = _find_version(client, name, content)
        if champ is not None and existing is not None and champ.version == existing.version:
            champ_err, problem = err, None  # the same content: compared with itself, it stays champion
        sanity_result = None
        if sanity is not None:
            from dislomob.ddd.law import MobilityLaw

            sanity_result = sanity(MobilityLaw.from_path(src.path, cfg))
        decision = decide(err, None if champ is None else champ.version, champ_err, problem,
                          None if sanity_result is None else failed_sanity(sanity_result))
        run_tags = {**owner_tags(), "source": src.kind}
        with ended_on_exit(mlflow.start_run(run_name=f"register-{src.kind}", tags=run_tags)):
            mlflow.log_params({"source": src.kind, "source_path": str(src.path), "model_name": name,
                               "registry.source": cfg.registry.source, "seed": cfg.seed,
                               **{f"train.{k}": v for k, v in cfg.train.model_dump().items()},
                               **{f"features.{k}": v for k, v in cfg.features.model_dump().items()}})
            mlflow.log_metrics({"test_error_median": err, **{f"train_{k}": v for k, v in src.metrics.items()},
                                **({"champion_test_error_median_before": champ_err} if champ_err is not None else {})})
            if existing is None:
                if not client.search_registered_models(f"name='{name}'"):
                    client.create_registered_model(name, description="Learned dislocation mobility law (PI-GNN "
                                                   "ensemble) of dislomob: pyfunc, network JSON in, nodal m/s out")
                info = log_law_model(src.path, cfg, example_network)
                mv = mlflow.register_model(info.model_uri, name, tags={CONTENT_TAG: content})
                version, reused = str(mv.version), False
            else:
                version, reused = str(existing.version), True
            tags = {**_version_tags(src, cfg, err, n_test, lock_path), "alias_decision": decision.alias,
                    "decision_reason": decision.reason, "registry_run_id": mlflow.active_run().info.run_id}
            sanity_passed = None
            if sanity_result is None:
                tags["sanity.passed"] = "not run"
            else:
                mlflow.log_text(json.dumps(sanity_result, indent=2, default=_plain), "sanity.json")
                tags.update(sanity_tags(sanity_result))
                sanity_passed = sanity_result.get("passed")
            for k, v in tags.items():
                client.set_model_version_tag(name, version, k, v)
            client.set_registered_model_alias(name, decision.alias, version)
            mlflow.set_tags({"model_version": version, "alias": decision.alias, "decision_reason": decision.reason,
                             "reused_version": str(reused).lower()})
            champion_now = _alias_version(client, name, CHAMPION)
            if champion_now is None:  # the first version failed its sanity checks: later stages get it, labelled
                local = _write_local_copy(client, name, version, reg_uri, Path(out_dir), tmp, decision.alias)
            else:
                local = _write_local_copy(client, name, champion_now, reg_uri, Path(out_dir), tmp)
            out = {"model_name": name, "version": int(version), "alias": decision.alias, "reason": decision.reason,
                   "reused_version": reused, "test_error_median": err,
                   "champion_version_before": (None if decision.previous_version is None
                                               else int(decision.previous_version)),
                   "champion_test_error_median_before": decision.previous_test_error,
                   "champion_version": None if champion_now is None else int(champion_now),
                   "champion_uri": local["model_uri"] if champion_now is not None else None,
                   "local_copy_uri": local["model_uri"],
                   "source": src.kind, "source_path": str(src.path), "test_trajectories": n_test["trajectories"],
                   "test_graphs": n_test["graphs"], "registry_uri": reg_uri, "sanity_passed": sanity_passed}
            write_json(metrics_path, out)
            mlflow.log_dict(out, "register.json")
    return out


def register_stage(cfg: Config, al_dir: str | Path, test_md_dir: str | Path, test_graphs_dir: str | Path,
                   example_network: str | Path, out_dir: str | Path, metrics_path: str | Path,
                   train_metrics: str | Path = "metrics/train.json",
                   lock_path: str | Path = "dvc.lock", sanity_graph_files: list[Path] | None = None) -> dict[str, Any]:
    """The ``register`` stage (module docstring): source ensemble, fixed test set, registry, local copy. The MD
    sanity checks see the fixed test runs' frames and those of ``sanity_graph_files`` (e.g. the eval_data stage's
    held-out screw and edge dipoles at one (T, stress): same-condition pairs for the screw/edge ordering)."""
    from dislomob.ddd.sanity import check_law, md_frame_networks

    src = resolve_source(cfg.registry.source, cfg.train.model_dir, al_dir, train_metrics)
    test, graph_files = fixed_test_set(cfg, test_md_dir, test_graphs_dir)
    networks = [n for f in [*graph_files, *(sanity_graph_files or [])] for n in md_frame_networks(f, cfg)]
    return register_ensemble(cfg, src, test, example_network, out_dir, metrics_path, lock_path,
                             sanity=lambda law: check_law(law, cfg, networks))
