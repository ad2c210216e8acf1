"""The session's work survives a reload: an id in the URL names a store in the user folder."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import REPO, run_page, texts
from ui.session_store import load_session, new_session_id, save_session, valid_session_id


def test_store_round_trip_writes_only_on_change(tmp_path):
    sid = new_session_id()
    assert valid_session_id(sid) and not valid_session_id("../../etc") and not valid_session_id(None)
    assert load_session(tmp_path, sid) == {}
    values = {"scan": {"path": "/x.h5", "label": "x"}, "pixel": [1, 2], "unknown": 3, "ft_job": None}
    assert save_session(tmp_path, sid, values) is True
    assert load_session(tmp_path, sid) == {"scan": {"path": "/x.h5", "label": "x"}, "pixel": [1, 2]}
    assert save_session(tmp_path, sid, values) is False  # unchanged: not rewritten
    assert not list(tmp_path.glob("*.part*"))
    (tmp_path / f"{sid}.json").write_text("{broken")
    assert load_session(tmp_path, sid) == {}
    with pytest.raises(ValueError, match="not a session id"):
        save_session(tmp_path, "../evil", values)


def _reload(sid: str, page: str) -> AppTest:
    """A new browser session (empty session state) on the same URL."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.query_params["session"] = sid
    at.switch_page(f"pages/{page}.py")
    return at.run()


@pytest.mark.filterwarnings("ignore:.*no energy calibration found")
def test_reload_keeps_scan_calibration_regions_and_pixel(tmp_path, tiny_model, user_dir, monkeypatch):
    import numpy as np

    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "small.npy", np.random.default_rng(0).poisson(3, (6, 7, 256)).astype(np.uint16))
    monkeypatch.setenv("XRF_DATA_DIR", str(data))
    at = run_page("scan", model=tiny_model, user=user_dir)
    sid = at.query_params["session"][0] if isinstance(at.query_params["session"], list) else at.query_params["session"]
    assert valid_session_id(sid)
    at.text_input(key="data_path").input("small.npy")
    at.button(key="open_data").click().run()
    gain = [n for n in at.number_input if n.label == "gain (eV/channel)"][0]
    gain.set_value(20.0)
    at.button[[b.label for b in at.button].index("Apply calibration")].click().run()
    assert not at.exception

    at2 = _reload(sid, "scan")
    assert not at2.exception
    assert {m.label: m.value for m in at2.metric}["Rows × columns"] == "6 × 7"
    assert {m.label: m.value for m in at2.metric}["Energy range (keV)"] == f"0.00 – {255 * 0.02:.2f}"
    assert not any("carries no energy calibration" in w for w in texts(at2, "warning"))

    # regions drawn on the finetune page of the demo come back too
    at3 = run_page("finetune", model=tiny_model, user=user_dir)
    sid3 = at3.session_state["_session_id"]
    at3.button(key="ft_load_demo").click().run()
    n = len(at3.session_state["regions"])
    assert n > 0
    saved = json.loads((user_dir / "sessions" / f"{sid3}.json").read_text())
    assert len(saved["regions"]) == n and saved["scan"]["label"] == "demo mock-up"
    at4 = _reload(sid3, "finetune")
    assert not at4.exception
    assert len(at4.session_state["regions_table"]) == n


def test_a_vanished_scan_falls_back_with_a_note(tiny_model, user_dir):
    sid = new_session_id()
    save_session(user_dir / "sessions", sid, {"scan": {"path": "/nowhere/gone.h5", "label": "gone.h5"},
                                             "pixel": [3, 3]})
    at = _reload(sid, "scan")
    assert not at.exception
    assert any("gone.h5" in w and "no longer on the server" in w for w in texts(at.sidebar, "warning"))
    assert {m.label: m.value for m in at.metric}["Rows × columns"] == "64 × 64"
