"""Atomic writes: stale temporaries of killed writers, and outputs that would overwrite inputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xrfcore.atomic import atomic_path, atomic_write_text, refuse_overwriting_inputs, remove_stale_temporaries
from xrfcore.cli import main
from xrfcore.errors import ConfigError
from xrfcore.io import write_scan_h5
from xrfcore.scan import EnergyCalibration

REPO = Path(__file__).resolve().parents[1]
_WRITER = """
import sys, time
from xrfcore.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half")
    print(tmp, flush=True)
    time.sleep(600)
"""


def _wait_for(condition, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_kill_9_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    final = tmp_path / "maps.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(final)], stdout=subprocess.PIPE, text=True, env=env)
    tmp = Path(proc.stdout.readline().strip())
    _wait_for(tmp.exists)
    assert str(proc.pid) in tmp.name and tmp.name.endswith(".part.h5")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tmp.exists() and not final.exists()  # what kill -9 leaves
    atomic_write_text(final, "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.h5"]


def test_live_writers_and_other_files_are_kept(tmp_path):
    mine = tmp_path / f".out.{os.uname().nodename[:8]}-{os.getpid()}.abcdef12.part.h5"
    other_host = tmp_path / ".out.otherhost-1.abcdef12.part.h5"
    plain = tmp_path / ".out.h5"
    for p in (mine, other_host, plain):
        p.write_text("x")
    assert remove_stale_temporaries(tmp_path) == []  # this process is alive; the other host is recent
    old = time.time() - 2 * 24 * 3600
    os.utime(other_host, (old, old))
    assert remove_stale_temporaries(tmp_path) == [other_host]
    assert plain.exists()


def test_atomic_path_cleans_only_its_own_stem(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    with atomic_path(tmp_path / "probe.txt") as probe:
        host = probe.name.split(".")[2].rsplit("-", 1)[0]
        probe.write_text("p")
    a = tmp_path / f".a.{host}-{pid}.0123abcd.part.h5"
    b = tmp_path / f".b.{host}-{pid}.0123abcd.part.h5"
    a.write_text("x")
    b.write_text("x")
    atomic_write_text(tmp_path / "a.h5", "new")
    assert not a.exists() and b.exists()


def test_refuse_overwriting_inputs_same_path_symlink_and_hard_link(tmp_path):
    scan = tmp_path / "S.h5"
    scan.write_bytes(b"scan")
    (tmp_path / "link.h5").symlink_to(scan)
    os.link(scan, tmp_path / "hard.h5")
    for out in (scan, tmp_path / "link.h5", tmp_path / "hard.h5", tmp_path / "sub" / ".." / "S.h5"):
        with pytest.raises(ConfigError, match=r"--out .* is the input scan; choose another name"):
            refuse_overwriting_inputs({"--out": out}, {"the input scan": scan})
    with pytest.raises(ConfigError, match=r"--csv .* is the --labels file"):
        refuse_overwriting_inputs({"--json": None, "--csv": scan}, {"--labels": [tmp_path / "x", scan]})
    refuse_overwriting_inputs({"--out": tmp_path / "maps.h5"}, {"the input scan": scan, "--model": None})


def test_commands_refuse_to_overwrite_their_input(tmp_path, capsys):
    rng = np.random.default_rng(0)
    scan = write_scan_h5(tmp_path / "S.h5", rng.poisson(5, (3, 4, 64)).astype(np.uint16), EnergyCalibration(0, 0.02))
    before = scan.read_bytes()
    assert main(["predict", str(scan), "--out", str(scan)]) == 2
    assert "is the input scan; choose another name" in capsys.readouterr().err
    assert main(["elements", str(scan), "--out", str(scan)]) == 2
    assert main(["evaluate", "--scan", str(scan), "--labels", str(scan), "--csv", str(scan)]) == 2
    assert "--csv" in capsys.readouterr().err
    assert main(["train", "--data", str(scan), "--out", str(scan)]) == 2
    assert scan.read_bytes() == before
