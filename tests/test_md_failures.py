"""Failures are recorded, never lost: a blown-up run in a Parsl batch and bad CLI input."""

import numpy as np
import pytest

from conftest import small_config
from dislomob.cli import main
from dislomob.config import parse_config
from dislomob.md.dispatch import run_batch
from dislomob.md.run import RunSpec
from dislomob.md.trajectory import read_trajectory

pytestmark = pytest.mark.slow


def test_batch_records_a_failed_run_and_completes_the_others(tmp_path):
    cfg = small_config(duration_ps=0.3, equilibrate_ps=0.1, threads=1, box={"glide_nm": 3.0, "line_nm": 1.0, "height_nm": 6.0})
    data = cfg.model_dump()
    data["executor"].update({"workers": 2, "run_dir": str(tmp_path / "parsl")})
    cfg = parse_config(data)
    bad_md = cfg.md.model_copy(update={"timestep_fs": 50.0, "duration_ps": 4.0})
    specs = [RunSpec(300.0, 0.5, 90.0), RunSpec(1000.0, 0.5, 90.0)]
    good_path, bad_path = run_batch(specs, cfg, tmp_path / "md", progress=False, md=[cfg.md, bad_md])
    good, bad = read_trajectory(good_path), read_trajectory(bad_path)
    assert good.meta.status == "ok" and len(good.frames) == 4
    assert bad.meta.status == "failed"
    assert bad.meta.failure_reason and any(w in bad.meta.failure_reason for w in ("Lost atoms", "too far", "temperature"))
    assert bad.meta.events[-1].kind == "failed"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--temperature-k", "-10", "--stress-gpa", "0.5", "--angle-deg", "90"], "temperature_k=-10"),
        (["--temperature-k", "300", "--stress-gpa", "0.5", "--angle-deg", "200"], "angle_deg=200"),
    ],
)
def test_cli_bad_values_fail_with_named_value(tmp_path, capsys, args, needle):
    rc = main(["simulate", *args, "--out", str(tmp_path / "t.h5")])
    assert rc == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "t.h5").exists()


def test_cli_single_run_writes_trajectory(tmp_path, monkeypatch, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("md:\n  duration_ps: 0.2\n  equilibrate_ps: 0.1\n  settle_ps: 0.05\n  minimize_steps: 100\n"
                      "  box: {glide_nm: 3.0, line_nm: 1.0, height_nm: 6.0}\n")
    out = tmp_path / "edge.h5"
    rc = main(["--params", str(params), "simulate", "--temperature-k", "300", "--stress-gpa", "0.5", "--angle-deg", "88",
               "--out", str(out), "--quiet", "--write-ca"])
    assert rc == 0
    ca_files = sorted((tmp_path / "edge_ca").glob("frame_*.ca"))
    assert len(ca_files) == 3 and all(f.stat().st_size > 0 for f in ca_files)
    text = ca_files[0].read_text()
    assert text.startswith("CA_FILE_VERSION") and "DISLOCATIONS 2" in text
    traj = read_trajectory(out)
    assert traj.meta.angle_deg == pytest.approx(90.0) and traj.meta.requested_angle_deg == 88.0
    assert len(traj.frames) == 3 and all(len(f.lines) == 2 for f in traj.frames)
    # frame times count from the load: the unrecorded settling comes first
    assert traj.meta.settle_ps == 0.05
    assert np.isclose(traj.frames[0].time_ps, 0.05) and np.isclose(traj.frames[-1].time_ps, 0.25)
