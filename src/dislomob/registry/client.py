"""Reaching the MLflow Model Registry: which registry, model URIs, and errors that say what is there.

The registry is the tracking store (``registry.tracking_uri``, default ``train.tracking_uri``: the sqlite DB
under mlflow/). A model URI is ``models:/<name>@<alias>`` or ``models:/<name>/<version>``. Nothing here sets
MLflow's process-wide URIs: every call names its registry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from dislomob.errors import DislomobError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class RegistryError(DislomobError, ValueError):
    """A model URI that does not resolve in the registry (no such model, alias or version); says what exists."""


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of ``models:/<name>@<alias>`` or ``models:/<name>/<version>``; else RegistryError."""
    m = MODEL_URI.match(uri)
    if m is None:
        raise RegistryError(f"model URI {uri!r} not understood: allowed models:/<name>@<alias> or "
                            "models:/<name>/<version>")
    return m["name"], m["alias"], m["version"]


def describe_model(client: MlflowClient, name: str) -> str:
    """What the registry holds under ``name``: its versions and aliases (for error messages)."""
    from mlflow.exceptions import MlflowException

    try:
        rm = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models(max_results=50))
        return f"no registered model {name!r} (registered: {names or 'none'})"
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    aliases = {a: int(v) for a, v in sorted((rm.aliases or {}).items())}
    return f"registered model {name!r} has versions {versions} and aliases {aliases or 'none'}"


def resolve_version(uri: str, registry_uri: str) -> ModelVersion:
    """The ModelVersion that ``uri`` names in the registry ``registry_uri``; RegistryError says what exists."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, alias, version = parse_model_uri(uri)
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"{uri} not found in the registry {registry_uri}: {describe_model(client, name)}") from None


def download_model(uri: str, registry_uri: str, dst: str | Path) -> Path:
    """Download the MLflow model that ``uri`` names from ``registry_uri`` into the folder ``dst``; its local path."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    mv = resolve_version(uri, registry_uri)
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    # the version's own artifact location: a models:/ URI here would be resolved by MLflow against the process's
    # default registry (MLflow 3.17's models artifact repository ignores the registry_uri it is given)
    source = client.get_model_version_download_uri(mv.name, mv.version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=registry_uri)
    return Path(local)
