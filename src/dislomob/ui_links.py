"""Direct links into the MLflow UI for what a user opens it for, and the UI itself on loopback (``dislomob ui``).

MLflow 3 opens an experiment in its GenAI view (traces) unless the URL asks for the classic one; the links say
``workflowType=machine_learning``. The three a user comes for:

- ``al_comparison``: the active-learning experiment's runs in chart mode (test error against queries, active
  beside passive: the strategies' parent runs carry the ``test_error_median`` history);
- ``tuning``: the tuning study's runs (one child run per trial);
- ``champion``: the registered model version that holds the ``champion`` alias.

A link whose target does not exist yet (no AL run, no registered champion) is given as None with the command
that makes it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

from dislomob.config import Config

CLASSIC = "workflowType=machine_learning"


@dataclass(frozen=True)
class UILink:
    """One link (None while its target does not exist) and what it shows or how to make it."""

    url: str | None
    what: str


def ui_links(cfg: Config, base_url: str) -> dict[str, UILink]:
    """The AL comparison chart, the tuning study and the registered champion in the MLflow UI at ``base_url``."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    base = base_url.rstrip("/")
    client = MlflowClient(tracking_uri=cfg.train.tracking_uri)
    out: dict[str, UILink] = {}
    for key, name, query, what, how in (
            ("al_comparison", cfg.active.experiment, f"?{CLASSIC}&compareRunsMode=CHART",
             "test error against queries, active vs passive (chart view)", "dislomob al"),
            ("tuning", cfg.tune.experiment, f"?{CLASSIC}", "the tuning study's trials", "dislomob tune")):
        exp = client.get_experiment_by_name(name)
        out[key] = (UILink(f"{base}/#/experiments/{exp.experiment_id}/runs{query}", what) if exp is not None
                    else UILink(None, f"no experiment {name!r} yet: run `{how}`"))
    reg_uri = cfg.registry.tracking_uri or cfg.train.tracking_uri
    name = cfg.registry.model_name
    try:
        mv = MlflowClient(tracking_uri=reg_uri, registry_uri=reg_uri).get_model_version_by_alias(name, "champion")
        out["champion"] = UILink(f"{base}/#/models/{name}/versions/{mv.version}",
                                 f"{name} version {mv.version} (alias champion)")
    except MlflowException:
        out["champion"] = UILink(None, f"no champion of {name!r} registered yet: run `dislomob register`")
    return out


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_ui(cfg: Config, port: int, timeout_s: float = 90.0) -> tuple[subprocess.Popen, str]:
    """Start ``mlflow server`` on 127.0.0.1:``port`` over the params' tracking store; wait until it answers."""
    uri = cfg.train.tracking_uri
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    if cfg.registry.tracking_uri and cfg.registry.tracking_uri != uri:
        cmd += ["--registry-store-uri", cfg.registry.tracking_uri]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"mlflow server on {base} did not answer within {timeout_s:.0f} s")
