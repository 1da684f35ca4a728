"""Screenshot of the MLflow UI's compare view of the active and the passive parent run (headless Chromium).

Starts `mlflow ui` on loopback over the pipeline's tracking store, finds the newest parent run of each
strategy in the active-learning experiment, opens the compare view in Debian's `chromium` (headless) and
writes a PNG. Needs `apt-get install chromium`.

Usage: python benchmarks/render_mlflow_compare.py [--params params.yaml] [--out docs/mlflow_al_compare.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from dislomob.config import load_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="docs/mlflow_al_compare.png")
    ap.add_argument("--browser", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    cfg = load_config(args.params)
    import mlflow

    mlflow.set_tracking_uri(cfg.train.tracking_uri)
    exp = mlflow.get_experiment_by_name(cfg.active.experiment)
    if exp is None:
        sys.exit(f"no experiment {cfg.active.experiment!r} in {cfg.train.tracking_uri}: run `dvc repro` first")
    runs = mlflow.search_runs([exp.experiment_id], output_format="list", order_by=["attributes.start_time DESC"])
    parents = {}
    for r in runs:
        s = r.data.tags.get("strategy")
        if s and "mlflow.parentRunId" not in r.data.tags and s not in parents:
            parents[s] = r.info.run_id
    if len(parents) < 2:
        sys.exit(f"need an active and a passive parent run, found {sorted(parents)}")
    port = _free_port()
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
                           cfg.train.tracking_uri, "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/health", 90)
        query = urllib.parse.urlencode({"runs": json.dumps(list(parents.values())),
                                        "experiments": json.dumps([exp.experiment_id])})
        url = f"{base}/#/compare-runs?{query}"
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([args.browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1500,1300", "--virtual-time-budget=20000", f"--screenshot={out.resolve()}", url],
                       check=True, timeout=180, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"{out}: compare view of {parents} ({url})")
    finally:
        ui.terminate()
        ui.wait(timeout=30)


if __name__ == "__main__":
    main()
