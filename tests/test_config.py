import pytest

from dislomob.config import Config, ConfigError, load_config, parse_config


def _with(section: str, key: str, value):
    data = Config().model_dump()
    node = data
    parts = section.split(".") if section else []
    for p in parts:
        node = node[p]
    node[key] = value
    return data


@pytest.mark.parametrize(
    "section,key,value,needle",
    [
        ("dataset", "temperatures_k", [300, -5], "-5"),
        ("dataset", "angles_deg", [45, 200], "200"),
        ("material", "potential", "NoSuch.eam.fs", "NoSuch.eam.fs"),
        ("md.box", "height_nm", 1.0, "height_nm=1.0"),
        ("md", "timestep_fs", -1.0, "timestep_fs"),
        ("executor", "workers", 0, "workers"),
    ],
)
def test_bad_values_fail_naming_key_and_value(section, key, value, needle):
    with pytest.raises(ConfigError) as err:
        parse_config(_with(section, key, value))
    msg = str(err.value)
    assert needle in msg
    assert key in msg
    assert "allowed" in msg or "greater" in msg or "Input should" in msg


def test_unknown_key_is_rejected():
    data = Config().model_dump()
    data["md"]["timestpe_fs"] = 1.0
    with pytest.raises(ConfigError, match="timestpe_fs"):
        parse_config(data)


def test_repo_params_load_and_match_demo_grid():
    cfg = load_config("params.yaml")
    assert cfg.profile == "demo"
    assert sorted(cfg.dataset.temperatures_k) == [300, 500]
    assert sorted(cfg.dataset.stresses_gpa) == [0.25, 0.5]
    # the demo grid holds one character per bucket (screw-like, mixed, edge-like) so every test bucket
    # is measured; the paper profile keeps the paper's initial angles
    from dislomob.train.buckets import bucket_of

    assert sorted(bucket_of(a) for a in cfg.dataset.angles_deg) == ["edge_like", "mixed", "screw_like"]
    assert cfg.md.settle_ps >= 3.0  # lines reach ~95% of their steady speed only after ~3 ps under load
    paper = load_config("pipelines/paper/params.yaml")
    assert paper.md.duration_ps == 40.0
    assert sorted(paper.dataset.angles_deg) == [45, 135]


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_defaults_are_the_demo_profile():
    """One source of truth: the typed defaults equal params.yaml (the demo profile), so a section left out
    of a demo params file takes exactly the demo's values."""
    assert Config() == load_config("params.yaml")


def test_paper_profile_keeps_its_own_values():
    paper = load_config("pipelines/paper/params.yaml")
    assert paper.features.node_spacing_nm == 1.5 and paper.train.restore_best_epoch is True
    assert paper.md.threads == 8 and paper.executor.kind == "slurm"
    assert paper.executor.slurm.cores_per_run >= paper.md.threads and paper.executor.slurm.walltime == "24:00:00"


def test_cluster_profile_is_the_demo_with_slurm_md():
    """pipelines/cluster/params.yaml differs from the demo only in its profile name and executor (no DVC parameter),
    so a cluster repro reproduces the demo's dvc.lock."""
    cluster = load_config("pipelines/cluster/params.yaml")
    assert cluster.executor.kind == "slurm" and cluster.executor.slurm.address == "127.0.0.1"
    assert cluster.model_dump(exclude={"profile", "executor"}) == Config().model_dump(exclude={"profile", "executor"})


@pytest.mark.parametrize("slurm,match", [({"walltime": "4 hours"}, "walltime '4 hours' not allowed"),
                                         ({"walltime": "01:75:00"}, "walltime '01:75:00' not allowed"),
                                         ({"runs_per_node": 0}, "executor.slurm.runs_per_node"),
                                         ({"cores_per_run": 1, "unknown": 2}, "executor.slurm.unknown")])
def test_bad_slurm_settings_are_refused_by_name(slurm, match):
    data = Config().model_dump()
    data["executor"].update({"kind": "slurm", "slurm": {**data["executor"]["slurm"], **slurm}})
    with pytest.raises(ConfigError, match=match):
        parse_config(data)


def test_slurm_cores_per_run_must_hold_one_md_run():
    data = Config().model_dump()
    data["md"]["threads"] = 4
    data["executor"].update({"kind": "slurm", "slurm": {**data["executor"]["slurm"], "cores_per_run": 2}})
    with pytest.raises(ConfigError, match=r"executor.slurm.cores_per_run=2 is fewer than the 4 cores"):
        parse_config(data)
    data["executor"]["slurm"]["cores_per_run"] = 4
    assert parse_config(data).executor.slurm.cores_per_run == 4


@pytest.mark.parametrize("key,value", [("md.duration_ps", float("inf")), ("md.settle_ps", float("nan")),
                                       ("features.dt_ps", float("-inf")), ("train.learning_rate", float("nan")),
                                       ("material.poisson_ratio", float("nan"))])
def test_non_finite_numbers_are_rejected(key, value):
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".*finite"):
        parse_config(_with(section, name, value))


def test_duplicate_key_and_syntax_error_name_file_and_line(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("seed: 1\nmd:\n  threads: 1\n  threads: 2\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml:4: duplicate key md\.threads \(first given at line 3\)"):
        load_config(p)
    p.write_text("md:\n  threads: [1\nseed: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "dup.yaml:3:" in str(err.value) and "YAML syntax error" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_section_allowed_only_in_the_demo_profile(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("seed: 7\n")
    assert load_config(p).md == Config().md
    p.write_text("profile: paper\nseed: 7\nmd: {}\n")
    with pytest.raises(ConfigError, match="misses section.*dataset"):
        load_config(p)


@pytest.mark.parametrize("section", [k for k in Config.model_fields if k not in ("profile", "seed")])
def test_a_non_demo_profile_missing_any_section_is_refused_by_its_name(section):
    """Every section counts (registry, rollout, evaluate and loops were once left out and silently took the
    demo's values)."""
    data = {**Config().model_dump(), "profile": "site"}
    del data[section]
    with pytest.raises(ConfigError, match=rf"profile 'site' misses section\(s\) {section}:"):
        parse_config(data)
