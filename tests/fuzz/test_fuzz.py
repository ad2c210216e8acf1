"""Hostile files through every reader, label and model parser: a seeded sweep of mutated files.

Each case runs the real command path (``python -m xrfcore info FILE``, ``load_labels``,
``load_model``) in its own child process with a timeout and an address-space limit. The sweep
passes when every case is either a success with a valid report or exit 2 with one
``error: ...`` line: no traceback, signal, hang or memory blow-up, no truncated file read as a
success, no input file changed, and every valid fixture still reads. The larger sweep is
``benchmarks/bench_fuzz.py``.
"""

from __future__ import annotations

import os
import signal

import pytest
from fuzzcases import make_cases
from fuzzrun import _classify, run_cases, summarise

BAD = ("traceback", "signal", "hang", "memory", "truncated_ok", "input_changed", "control_failed")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model):
    cases = make_cases(tmp_path_factory.mktemp("fuzz"), seed=17, scale=1, model=tiny_model, big_config_mb=40)
    return cases, run_cases(cases, workers=2, timeout_s=30.0, env={"XRF_READER_TIMEOUT_S": "10",
                                                                   "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_sweep_has_every_family(sweep):
    cases, results = sweep
    assert len(cases) >= 300
    families = {c["id"].split("/")[0] for c in cases}
    assert {"h5own", "h5nexus", "h5edit", "npy", "npz", "rpl", "spx", "bcf", "spe", "pymca-mca", "specmca",
            "json", "csv", "dense", "keras"} <= families
    assert len(results) == len(cases)
    counts = summarise(results)
    assert counts["ok"] >= sum(c["control"] for c in cases) and counts["clean"] > len(cases) // 2


def test_no_crash_hang_traceback_or_silent_truncation(sweep):
    _, results = sweep
    bad = [r for r in results if r["outcome"] in BAD]
    report = "\n".join(f"{r['outcome']}: {r['id']}: {r['detail'][:300]}" for r in bad[:40])
    assert not bad, f"{len(bad)} hostile files were not handled ({summarise(results)}):\n{report}"


def test_error_messages_name_the_file(sweep):
    _, results = sweep
    anonymous = [f"{r['id']}: {r['detail'][:200]}" for r in results
                 if r["outcome"] == "clean" and os.path.splitext(os.path.basename(r["path"]))[0] not in r["detail"]]
    assert not anonymous, "messages that do not name the file:\n" + "\n".join(anonymous[:20])


def test_classifier_sees_failures():
    case = {"kind": "scan", "must_fail": False}
    settings = {"timeout_s": 1, "rss_limit_mb": 100}
    tb = "Traceback (most recent call last):\n  File x\nValueError: boom\n"
    assert _classify(case, 1 << 8, "", tb, 10, settings)[0] == "traceback"
    assert _classify(case, signal.SIGSEGV, "", "", 10, settings)[0] == "signal"
    assert _classify(case, None, "", "", 10, settings)[0] == "hang"
    assert _classify(case, 2 << 8, "", "error: a\nerror: b\n", 10, settings)[0] == "traceback"
    assert _classify(case, 2 << 8, "", "warning: w\nerror: bad file\n", 10, settings)[0] == "clean"
    assert _classify(case, 0, '{"shape": [1, 1, 0], "total_counts": 1}', "", 10, settings)[0] == "traceback"
    assert _classify({**case, "must_fail": True}, 0, '{"shape": [1, 1, 8], "total_counts": 1.0}', "", 10,
                     settings)[0] == "truncated_ok"
    assert _classify(case, 0, '{"shape": [1, 1, 8], "total_counts": 1.0}', "", 500, settings)[0] == "memory"
