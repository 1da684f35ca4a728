"""`dislomob ui`: direct links into the MLflow UI (classic view) and the UI itself on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from dislomob.config import Config, parse_config
from dislomob.ui_links import free_port, start_ui, ui_links


def _cfg(tmp_path) -> Config:
    data = Config().model_dump()
    data["train"]["tracking_uri"] = f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    return parse_config(data)


def test_links_name_the_experiments_and_the_champion_and_say_what_is_missing(tmp_path):
    from mlflow.tracking import MlflowClient

    from dislomob.tracking import tracking_setup

    cfg = _cfg(tmp_path)
    empty = ui_links(cfg, "http://127.0.0.1:5000/")
    assert all(link.url is None for link in empty.values())
    assert "dislomob al" in empty["al_comparison"].what and "dislomob register" in empty["champion"].what
    al_id = tracking_setup(cfg.train.tracking_uri, cfg.active.experiment)
    tune_id = tracking_setup(cfg.train.tracking_uri, cfg.tune.experiment)
    client = MlflowClient(tracking_uri=cfg.train.tracking_uri, registry_uri=cfg.train.tracking_uri)
    client.create_registered_model(cfg.registry.model_name)
    for _ in range(2):
        mv = client.create_model_version(cfg.registry.model_name, source=str(tmp_path / "model"))
    client.set_registered_model_alias(cfg.registry.model_name, "champion", "1")
    links = ui_links(cfg, "http://127.0.0.1:5000/")
    assert links["al_comparison"].url == (f"http://127.0.0.1:5000/#/experiments/{al_id}/runs?"
                                          "workflowType=machine_learning&compareRunsMode=CHART")
    assert links["tuning"].url == f"http://127.0.0.1:5000/#/experiments/{tune_id}/runs?workflowType=machine_learning"
    assert str(mv.version) == "2" and links["champion"].url.endswith(f"/#/models/{cfg.registry.model_name}/versions/1")


@pytest.mark.slow
def test_the_ui_answers_on_loopback_only(tmp_path):
    from test_faults_md import listening

    cfg = _cfg(tmp_path)
    proc, base = start_ui(cfg, free_port())
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
            assert r.status == 200
        time.sleep(0.5)
        import psutil

        pids = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        addrs = {a for pid in pids for a in listening(pid)}
        assert addrs and all(a.startswith("127.0.0.1:") for a in addrs), addrs
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_print_only_starts_nothing(tmp_path):
    params = tmp_path / "params.yaml"
    import yaml

    params.write_text(yaml.safe_dump(_cfg(tmp_path).model_dump()))
    out = subprocess.run([sys.executable, "-m", "dislomob.cli", "--params", str(params), "ui", "--print-only",
                          "--base-url", "http://127.0.0.1:5999"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "http://127.0.0.1:5999" in out.stdout and "al_comparison: -" in out.stdout
