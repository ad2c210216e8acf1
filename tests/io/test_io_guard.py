"""The guarded child process that runs third-party parsers (crash, hang, memory, errors)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io import run_guarded


def _crash():
    os.kill(os.getpid(), signal.SIGSEGV)


def _sleep():
    time.sleep(60)


def _allocate():
    return np.ones(2**33, dtype=np.uint8).sum()


def _xrf_error():
    raise CalibrationError("bad gain in f.h5")


def _bug():
    raise KeyError("DetLayers")


def _value(x):
    return {"cube": np.arange(x), "n": x}


def test_result_comes_back(tmp_path):
    out = run_guarded(_value, 1000, path=tmp_path / "f", what="a reader")
    assert out["n"] == 1000 and np.array_equal(out["cube"], np.arange(1000))


def test_crash_becomes_a_scan_read_error(tmp_path):
    with pytest.raises(ScanReadError, match=r"f\.bcf: a reader crashed on this file \(signal SIGSEGV\)"):
        run_guarded(_crash, path=tmp_path / "f.bcf", what="a reader")


def test_hang_is_stopped_at_the_timeout(tmp_path):
    with pytest.raises(ScanReadError, match=r"did not finish within 1 s"):
        run_guarded(_sleep, path=tmp_path / "f.spe", what="a reader", timeout_s=1)


def test_memory_limit(tmp_path):
    with pytest.raises(ScanReadError, match="more memory than the limit|crashed"):
        run_guarded(_allocate, path=tmp_path / "f", what="a reader", memory_bytes=1 << 30)


def test_errors_keep_their_type_or_become_scan_read_errors(tmp_path):
    with pytest.raises(CalibrationError, match="bad gain"):
        run_guarded(_xrf_error, path=tmp_path / "f", what="a reader")
    with pytest.raises(ScanReadError, match=r"a reader cannot read this file \(KeyError: 'DetLayers'\)"):
        run_guarded(_bug, path=tmp_path / "f", what="a reader")


def test_with_other_threads_running_a_fork_server_is_used(tmp_path):
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        with pytest.raises(ScanReadError, match="SIGSEGV"):
            run_guarded(_crash, path=tmp_path / "f", what="a reader")
        assert run_guarded(_value, 3, path=tmp_path / "f", what="a reader")["n"] == 3
    finally:
        stop.set()
