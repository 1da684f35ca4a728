"""The MLflow Model Registry of the law (dislomob.registry): champion/challenger rule, pyfunc round trip in a
fresh process, `dislomob predict --model models:/...`, source choice, provenance and clear errors.

A real sqlite registry in a temporary folder; untrained float64 ensembles (tests/ddd_helpers.py) judged on
small synthetic trajectories (tests/model_helpers.py): no LAMMPS.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ddd_helpers import DIPOLE_FILE, untrained_law_file
from dislomob.cli import main
from dislomob.config import Config, parse_config
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import read_network
from dislomob.errors import InputFileError
from dislomob.model.ensemble import load_ensemble, save_ensemble
from dislomob.registry.champion import CHALLENGER, CHAMPION, decide, ensemble_test_error
from dislomob.registry.client import RegistryError, parse_model_uri
from dislomob.registry.law_config import config_from_law_config, law_config, read_law_config, write_law_config
from dislomob.registry.provenance import data_versions, git_tags
from dislomob.registry.source import EnsembleSource, resolve_source
from dislomob.registry.stage import failed_sanity, register_ensemble
from model_helpers import graph_record, shear_stress, torch_one_thread, trajectory_graphs  # noqa: F401 (autouse)

NAME = "test-law"
CONDITIONS = [(0.0, 0.3, 300.0), (45.0, 0.4, 400.0), (90.0, 0.5, 500.0)]  # angle deg, stress GPa, T K
VENV_PYTHON = sys.executable


def assert_close(a: np.ndarray, b: np.ndarray, rel: float = 1e-10) -> None:
    scale = max(float(np.abs(b).max()), 1e-30)
    assert float(np.abs(np.asarray(a) - b).max()) <= rel * scale


@pytest.fixture(scope="module")
def test_graphs() -> dict[str, list]:
    """A fixed test set: three short synthetic trajectories (screw, mixed, edge)."""
    return {f"t{k}": trajectory_graphs(f"t{k}", a, tau, t, n_frames=2) for k, (a, tau, t) in enumerate(CONDITIONS)}


def md_sanity_of(test_graphs: dict[str, list]):
    """The MD-frame part of the sanity checks (dislomob.ddd.sanity.md_sanity) on the test trajectories' frames."""
    from dislomob.ddd.sanity import md_sanity, record_network

    nets = []
    for k, (_, tau, _) in enumerate(CONDITIONS):
        meta = {"trajectory": {"stress_tensor_gpa": shear_stress(tau).tolist(), "burgers": [0.5, 0.5, -0.5]}}
        nets += [record_network(graph_record(g), meta, Config()) for g in test_graphs[f"t{k}"]]
    return lambda law: md_sanity(law, nets)


@pytest.fixture(scope="module", autouse=True)
def quiet_downloads():
    """No artifact-download progress bars in the test log."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        yield


@pytest.fixture(scope="module")
def registry(tmp_path_factory, test_graphs, quiet_downloads):
    """Four versions in one registry: worst (first: champion), best (fails its MD sanity checks: challenger),
    middle (champion), a byte-different copy of the best registered without sanity checks (champion) and the
    middle again (reused, challenger). Returns the folder, the config and the records."""
    root = tmp_path_factory.mktemp("registry")
    cfg = parse_config({"registry": {"model_name": NAME, "tracking_uri": f"sqlite:///{root / 'mlflow.db'}"}})
    files = {s: untrained_law_file(root / f"seed{s}", members=3, seed=s) for s in (1, 2, 3)}
    errors = {s: ensemble_test_error(p, test_graphs, cfg) for s, p in files.items()}
    best, middle, worst = sorted(files, key=errors.get)
    assert errors[best] < errors[middle] < errors[worst]
    model, _ = load_ensemble(files[best])
    copy = root / "best_copy" / "ensemble.pt"
    save_ensemble(model, copy, {"note": "the best ensemble saved again"})
    assert copy.read_bytes() != files[best].read_bytes()
    out_dir, steps = root / "models" / "register", []
    for label, path in (("worst", files[worst]), ("best", files[best]), ("middle", files[middle]),
                        ("best_copy", copy), ("middle_again", files[middle])):
        metrics = root / "metrics" / f"register_{label}.json"
        rec = register_ensemble(cfg, EnsembleSource("train", path, {"val_loss": 1.5}), test_graphs, DIPOLE_FILE,
                                out_dir, metrics, lock_path=root / "no_dvc.lock",
                                sanity=md_sanity_of(test_graphs) if label == "best" else None)
        assert json.loads(metrics.read_text()) == json.loads(json.dumps(rec))
        steps.append({"label": label, "path": path, "rec": rec,
                      "local": json.loads((out_dir / "model.json").read_text()),
                      "local_bytes": (out_dir / "ensemble.pt").read_bytes()})
    return {"root": root, "cfg": cfg, "uri": cfg.registry.tracking_uri, "errors": errors, "steps": steps,
            "best": files[best], "copy": copy}


@pytest.mark.slow  # the registry fixture logs four models (~30 s on 2 shared cores)
def test_champion_moves_only_when_not_worse_and_sane(registry) -> None:
    from mlflow import MlflowClient

    worst, best, middle, best_copy, middle_again = (s["rec"] for s in registry["steps"])
    assert (worst["version"], worst["alias"], worst["reason"]) == (1, CHAMPION, "no champion yet")
    # the best error, but the untrained law fails its MD sanity checks (screw/edge ordering): challenger
    assert (best["version"], best["alias"], best["champion_version"]) == (2, CHALLENGER, 1)
    assert best["reason"].startswith("failed the law's sanity checks: ordering") and best["sanity_passed"] is False
    assert best["test_error_median"] < middle["test_error_median"] < worst["test_error_median"]
    # the champion's error is recomputed on the same test set: the worst ensemble's own error
    assert best["champion_test_error_median_before"] == pytest.approx(worst["test_error_median"], rel=1e-12)
    assert (middle["version"], middle["alias"], middle["champion_version_before"]) == (3, CHAMPION, 1)
    # the same weights as the challenger, other bytes, no sanity run: better than the champion, champion moves
    assert (best_copy["version"], best_copy["alias"], best_copy["champion_version_before"]) == (4, CHAMPION, 3)
    assert best_copy["test_error_median"] == best["test_error_median"]
    # registering content that is already a version reuses it (idempotent stage); now worse than the champion
    assert (middle_again["version"], middle_again["reused_version"], middle_again["alias"]) == (3, True, CHALLENGER)
    assert "worse than champion version 4" in middle_again["reason"]
    client = MlflowClient(tracking_uri=registry["uri"], registry_uri=registry["uri"])
    assert sorted(int(v.version) for v in client.search_model_versions(f"name='{NAME}'")) == [1, 2, 3, 4]
    assert str(client.get_model_version_by_alias(NAME, CHAMPION).version) == "4"
    challenger = client.get_model_version_by_alias(NAME, CHALLENGER)
    assert str(challenger.version) == "3" and "worse than champion version 4" in challenger.tags["decision_reason"]
    run = client.get_run(challenger.tags["registry_run_id"])
    assert run.data.tags["alias"] == CHALLENGER and "worse than champion" in run.data.tags["decision_reason"]
    assert run.data.metrics["test_error_median"] == pytest.approx(middle["test_error_median"])
    assert "failed the law's sanity checks" in client.get_model_version(NAME, "2").tags["decision_reason"]


@pytest.mark.slow  # the registry fixture logs four models (~30 s on 2 shared cores)
def test_version_tags_carry_provenance_metrics_and_params(registry) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry["uri"], registry_uri=registry["uri"])
    tags = client.get_model_version(NAME, "2").tags
    assert tags["source"] == "train" and tags["git_commit"] == git_tags()["git_commit"] != "unknown"
    assert tags["data_version"].startswith("unknown (no ")
    assert float(tags["train_metric.val_loss"]) == 1.5
    assert float(tags["test_error_median"]) == registry["steps"][1]["rec"]["test_error_median"]
    assert json.loads(tags["params.features"])["dt_ps"] == registry["cfg"].features.dt_ps
    assert json.loads(tags["params.registry"])["model_name"] == NAME
    # the sanity result: a JSON artifact of the run and pass/fail + numbers as tags (version 2 only)
    sanity = json.loads(Path(client.download_artifacts(tags["registry_run_id"], "sanity.json")).read_text())
    assert tags["sanity.passed"] == str(sanity["passed"]).lower()
    assert float(tags["sanity.direction.agree_fraction"]) == sanity["direction"]["agree_fraction"]
    assert int(tags["sanity.direction.n_moving"]) == sanity["direction"]["n_moving"] > 0
    assert registry["steps"][1]["rec"]["sanity_passed"] == sanity["passed"]
    assert client.get_model_version(NAME, "1").tags["sanity.passed"] == "not run"
    mv = client.get_model_version(NAME, "2")
    from mlflow.models import Model

    model = Model.load(f"models:/{NAME}/2")
    assert model.signature.inputs.input_names() == ["network"]
    assert model.signature.outputs.input_names() == ["network", "node", "vx_m_per_s", "vy_m_per_s", "vz_m_per_s",
                                                     "sigma_m_per_s"]
    assert mv.run_id is not None


@pytest.mark.slow  # the registry fixture logs four models (~30 s on 2 shared cores)
def test_local_copy_is_the_champion(registry) -> None:
    steps = registry["steps"]
    for s in steps:
        champion = next(t for t in steps if t["rec"]["version"] == s["rec"]["champion_version"])
        assert s["local"]["version"] == str(s["rec"]["champion_version"])
        assert s["local_bytes"] == champion["path"].read_bytes()
        assert s["local"]["model_uri"] == f"models:/{NAME}@champion"
    conf = read_law_config(registry["root"] / "models" / "register" / "law_config.json")
    assert conf.features == registry["cfg"].features and conf.material == registry["cfg"].material


@pytest.mark.slow  # the registry fixture logs four models (~30 s on 2 shared cores)
def test_fresh_process_loads_champion_with_only_the_registry(registry, tmp_path: Path) -> None:
    """mlflow.pyfunc.load_model('models:/<name>@champion') in a new interpreter that knows nothing but the
    registry URI and the model URI gives the law's velocities to 1e-10."""
    script = ("import sys, pandas, mlflow.pyfunc\n"
              "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
              "out = m.predict(pandas.DataFrame({'network': [open(sys.argv[2]).read()]}))\n"
              "out.to_json(sys.argv[3], orient='split', double_precision=15)\n")
    result = tmp_path / "out.json"
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)),
           "MLFLOW_TRACKING_URI": registry["uri"]}
    done = subprocess.run([VENV_PYTHON, "-c", script, f"models:/{NAME}@champion", str(DIPOLE_FILE), str(result)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    table = json.loads(result.read_text())
    cols = table["columns"]
    data = np.array(table["data"], dtype=np.float64)
    v, sigma = MobilityLaw.from_path(registry["copy"], Config()).velocities(read_network(DIPOLE_FILE))
    assert np.array_equal(data[:, cols.index("node")], np.arange(16))
    assert np.all(data[:, cols.index("network")] == 0)
    assert_close(data[:, [cols.index(c) for c in ("vx_m_per_s", "vy_m_per_s", "vz_m_per_s")]], v)
    assert_close(data[:, cols.index("sigma_m_per_s")], sigma)
    assert float(np.abs(v).max()) > 1.0 and float(sigma.max()) > 0.0


@pytest.mark.slow  # the registry fixture logs four models (~30 s on 2 shared cores)
def test_from_registry_and_predict_cli_match_from_path(registry, capsys, tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # as in a fresh process: the default store is
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # not the registry; only the argument names it
    network = read_network(DIPOLE_FILE)
    v, sigma = MobilityLaw.from_path(registry["best"], Config()).velocities(network)
    law = MobilityLaw.from_registry(f"models:/{NAME}/2", registry["uri"])
    assert law.dtype == torch.float64 and law.cfg.features == Config().features
    v2, s2 = law.velocities(network)
    assert_close(v2, v)
    assert_close(s2, sigma)
    uri = f"models:/{NAME}@champion"
    assert main(["predict", "--model", uri, "--registry-uri", registry["uri"], str(DIPOLE_FILE), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == uri and out["n_nodes"] == 16
    assert_close(np.array(out["velocity_m_per_s"]), v)
    assert_close(np.array(out["sigma_m_per_s"]), sigma)
    assert main(["predict", "--model", uri, "--registry-uri", registry["uri"], str(DIPOLE_FILE)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert uri in lines[0] and "sigma (m/s)" in lines[1] and len(lines) == 18
    assert np.allclose([float(x) for x in lines[2 + 3].split()[1:]], [*v[3], sigma[3]], rtol=1e-5)


@pytest.mark.slow  # the registry fixture logs four models (~30 s on 2 shared cores)
def test_bad_uri_or_alias_is_a_clear_error(registry, capsys) -> None:
    uri = registry["uri"]
    with pytest.raises(RegistryError, match=rf"models:/{NAME}@nope not found in the registry .*aliases "
                                            r"\{'challenger': 3, 'champion': 4\}"):
        MobilityLaw.from_registry(f"models:/{NAME}@nope", uri)
    with pytest.raises(RegistryError, match=r"models:/test-law/9 not found .*versions \[1, 2, 3, 4\]"):
        MobilityLaw.from_registry(f"models:/{NAME}/9", uri)
    with pytest.raises(RegistryError, match=r"no registered model 'other' \(registered: \['test-law'\]\)"):
        MobilityLaw.from_registry("models:/other@champion", uri)
    for bad in ("models:/", "models:/x@", "runs:/abc/law", "models:/a/b/c"):
        with pytest.raises(RegistryError, match="not understood"):
            parse_model_uri(bad)
    assert main(["predict", "--model", f"models:/{NAME}@nope", "--registry-uri", uri, str(DIPOLE_FILE)]) == 2
    assert f"models:/{NAME}@nope not found in the registry {uri}" in capsys.readouterr().err


def test_decide_rule() -> None:
    assert decide(0.3, None, None).alias == CHAMPION
    assert decide(0.3, "2", 0.3).alias == CHAMPION
    assert decide(0.29, "2", 0.3).alias == CHAMPION
    d = decide(0.31, "2", 0.3)
    assert (d.alias, d.previous_version, d.previous_test_error) == (CHALLENGER, "2", 0.3)
    assert decide(math.nan, None, None).alias == CHALLENGER
    assert decide(math.inf, "2", 0.3).alias == CHALLENGER
    d = decide(0.5, "2", None, "InputFileError: format_version 2 != 3")
    assert d.alias == CHAMPION and "cannot be evaluated (InputFileError" in d.reason


def test_source_choice(tmp_path: Path) -> None:
    law = untrained_law_file(tmp_path / "law", members=2, seed=5)
    train_dir, al_dir = tmp_path / "models" / "train", tmp_path / "models" / "al"
    with pytest.raises(InputFileError, match="train ensemble .* not found"):
        resolve_source("train", train_dir, al_dir)
    train_dir.mkdir(parents=True)
    shutil.copyfile(law, train_dir / "ensemble.pt")
    metrics = tmp_path / "train.json"
    metrics.write_text(json.dumps({"test_error_median": 0.4, "members": 20, "note": "text is dropped"}))
    src = resolve_source("auto", train_dir, al_dir, metrics)
    assert (src.kind, src.path) == ("train", train_dir / "ensemble.pt")
    assert src.metrics == {"test_error_median": 0.4, "members": 20.0}
    with pytest.raises(InputFileError, match="registry.source=active but .* has no completed iteration"):
        resolve_source("active", train_dir, al_dir)
    home = al_dir / "active"
    home.mkdir(parents=True)
    record = {"iterations": [], "stopped": None}
    (home / "record.json").write_text(json.dumps(record))
    assert resolve_source("auto", train_dir, al_dir).kind == "train"
    record["iterations"] = [{"iteration": k, "metrics": {"test_error_median": 0.3 - 0.1 * k}} for k in range(2)]
    (home / "record.json").write_text(json.dumps(record))
    with pytest.raises(InputFileError, match="lists iteration 1 but its ensemble .*iter_001/ensemble.pt is missing"):
        resolve_source("auto", train_dir, al_dir)
    (home / "iter_001").mkdir()
    shutil.copyfile(law, home / "iter_001" / "ensemble.pt")
    for source in ("auto", "active"):
        src = resolve_source(source, train_dir, al_dir)
        assert (src.kind, src.path, src.detail["iteration"]) == ("active", home / "iter_001" / "ensemble.pt", 1)
        assert src.metrics["test_error_median"] == pytest.approx(0.2)
    assert resolve_source("train", train_dir, al_dir).kind == "train"
    with pytest.raises(ValueError, match="registry.source='best' not allowed"):
        resolve_source("best", train_dir, al_dir)


def test_law_config_round_trip_and_errors(tmp_path: Path) -> None:
    cfg = parse_config({"features": {"n_gauss": 3, "core_width_b": 2.0, "dt_ps": 0.5},
                        "material": {"shear_modulus_gpa": 70.0}})
    path = tmp_path / "law_config.json"
    write_law_config(cfg, path)
    back = read_law_config(path)
    assert back.features == cfg.features and back.material == cfg.material
    data = law_config(cfg)
    with pytest.raises(InputFileError, match="format_version 7 not supported"):
        config_from_law_config({**data, "format_version": 7})
    with pytest.raises(InputFileError, match=r"unknown \['train'\]"):
        config_from_law_config({**data, "train": {}})
    bad = json.loads(json.dumps(data))
    bad["features"]["n_gauss"] = 0
    with pytest.raises(InputFileError, match="features.n_gauss = 0"):
        config_from_law_config(bad, "x.json")
    path.write_text("{")
    with pytest.raises(InputFileError, match="law config is not valid JSON"):
        read_law_config(path)


def test_data_versions_from_dvc_lock(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  featurize:\n    outs:\n    - path: data/graphs\n      md5: abc.dir\n"
                    "  al_data:\n    outs:\n    - path: data/al/md\n      md5: def.dir\n    - path: data/al/graphs\n"
                    "      md5: 123.dir\n  train:\n    outs:\n    - path: models/train\n      md5: zzz.dir\n")
    assert data_versions(lock) == {"data.data/graphs": "abc.dir", "data.data/al/md": "def.dir",
                                   "data.data/al/graphs": "123.dir"}
    assert data_versions(tmp_path / "none.lock")["data_version"].startswith("unknown")


def test_a_law_that_fails_its_sanity_checks_never_takes_champion() -> None:
    result = {"consistency": {"passed": True, "spacing": {"worst": 0.02, "tol": 0.1, "passed": True}},
              "md": {"direction": {"agree_fraction": 0.81, "n_moving": 40, "passed": False},
                     "ordering": {"agree_fraction": None, "n_pairs": 0, "passed": None}, "passed": False},
              "passed": False}
    why = failed_sanity(result)
    assert why == "md.direction (agree_fraction 0.81, n_moving 40)"
    d = decide(0.1, "2", 0.3, sanity_failure=why)
    assert d.alias == CHALLENGER and d.reason == f"failed the law's sanity checks: {why}"
    assert decide(0.1, None, None, sanity_failure=why).alias == CHALLENGER
    result["md"]["direction"]["passed"] = True
    result["md"]["passed"] = result["passed"] = True
    assert failed_sanity(result) is None and decide(0.1, "2", 0.3, sanity_failure=None).alias == CHAMPION
    assert failed_sanity({"passed": False}) == "sanity"


@pytest.mark.slow  # one registration (~8 s)
def test_a_first_version_that_fails_sanity_leaves_no_champion_and_hands_itself_on_labelled(
        tmp_path: Path, test_graphs, quiet_downloads) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    cfg = parse_config({"registry": {"model_name": NAME, "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}})
    law = untrained_law_file(tmp_path / "law", members=2, seed=1)
    failing = {"md": {"direction": {"agree_fraction": 0.5, "n_moving": 10, "passed": False}}, "passed": False}
    out_dir = tmp_path / "models" / "register"
    rec = register_ensemble(cfg, EnsembleSource("train", law, {}), test_graphs, DIPOLE_FILE, out_dir,
                            tmp_path / "register.json", lock_path=tmp_path / "no_dvc.lock", sanity=lambda _: failing)
    assert (rec["alias"], rec["champion_version"], rec["champion_uri"]) == (CHALLENGER, None, None)
    assert rec["reason"] == "failed the law's sanity checks: md.direction (agree_fraction 0.5, n_moving 10)"
    local = json.loads((out_dir / "model.json").read_text())
    assert (local["alias"], local["model_uri"], local["version"]) == (CHALLENGER, f"models:/{NAME}@challenger", "1")
    assert rec["local_copy_uri"] == local["model_uri"]
    assert (out_dir / "ensemble.pt").read_bytes() == law.read_bytes()
    client = MlflowClient(tracking_uri=cfg.registry.tracking_uri, registry_uri=cfg.registry.tracking_uri)
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(NAME, CHAMPION)
