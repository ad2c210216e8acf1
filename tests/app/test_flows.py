"""The app's main flows through ``streamlit.testing.v1.AppTest``: demo scan, data folder and
calibration, preprocessing parameters, threshold slider, labels, library validation, report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from app_helpers import REPO, run_page, texts


def test_scan_page_opens_demo_by_default(tiny_model, user_dir):
    at = run_page("scan", model=tiny_model, user=user_dir)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows × columns"] == "64 × 64"
    assert metrics["Channels"] == "2048"
    found = [s for s in texts(at, "success") if s.startswith("Elements found:")]
    assert found and "Pb" in found[0] and "Hg" in found[0]
    assert "demo mock-up" in [m.value.strip("*") for m in at.sidebar.markdown]


@pytest.mark.filterwarnings("ignore:.*no energy calibration found")
def test_data_folder_opens_inside_and_refuses_outside(tmp_path, user_dir, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "small.npy", np.random.default_rng(0).poisson(3, (4, 5, 256)).astype(np.uint16))
    np.save(tmp_path / "outside.npy", np.zeros((2, 2, 16), np.uint16))
    monkeypatch.setenv("XRF_DATA_DIR", str(data))
    at = run_page("scan", model=None, user=user_dir)
    at.text_input(key="data_path").input("../outside.npy")
    at.button(key="open_data").click().run()
    assert any(e.startswith("Refused:") and "outside the data folder" in e for e in texts(at, "error"))
    at.text_input(key="data_path").input("small.npy")
    at.button(key="open_data").click().run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Rows × columns"] == "4 × 5"
    # an .npy file carries no calibration: the page says so and lets the user enter one
    assert any("carries no energy calibration" in w for w in texts(at, "warning"))
    gain = [n for n in at.number_input if n.label == "gain (eV/channel)"][0]
    gain.set_value(20.0)
    at.button[[b.label for b in at.button].index("Apply calibration")].click().run()
    assert {m.label: m.value for m in at.metric}["Energy range (keV)"] == f"0.00 – {255 * 0.02:.2f}"


def test_preprocess_parameter_changes_the_pipeline(tiny_model, user_dir):
    at = run_page("preprocess", model=tiny_model, user=user_dir)
    before = [c for c in texts(at, "caption") if c.startswith("Pipeline:")][0]
    assert "340 x 80 eV" in before  # the tiny model's grid is the default
    at.number_input(key="pp_w_step").set_value(0.04).run()
    after = [c for c in texts(at, "caption") if c.startswith("Pipeline:")][0]
    assert "340 x 40 eV" in after
    at.checkbox(key="pp_w_snip").check().run()
    assert not at.exception
    assert "SNIP" in [c for c in texts(at, "caption") if c.startswith("Pipeline:")][0]


def test_maps_threshold_slider(tiny_model, user_dir):
    at = run_page("maps", model=tiny_model, user=user_dir)

    def share() -> float:
        cap = [c for c in texts(at, "caption") if "of pixels at or above" in c][0]
        return float(re.search(r"([\d.]+)% of pixels at or above (\d+)%", cap).group(1))

    at.slider(key="maps_threshold").set_value(5).run()
    low = share()
    at.slider(key="maps_threshold").set_value(95).run()
    high = share()
    assert not at.exception
    assert low >= high
    assert "95%" in [c for c in texts(at, "caption") if "of pixels at or above" in c][0]
    at.radio(key="maps_view").set_value("all pigments").run()
    assert not at.exception


def test_maps_page_without_a_model_says_how_to_get_one(tmp_path, user_dir, monkeypatch):
    monkeypatch.setenv("XRF_DEFAULT_MODEL", str(tmp_path / "missing.keras"))  # as before a model ships
    at = run_page("maps", model=None, user=user_dir)
    assert not at.exception
    assert any("No pigment model is available" in w and "python -m xrfcore train" in w for w in texts(at, "warning"))


def test_inspector_pixel_inputs_show_spectrum_and_probabilities(tiny_model, user_dir):
    at = run_page("inspector", model=tiny_model, user=user_dir)
    assert "**pixel (row 32, col 32)**" in texts(at, "markdown")
    probs = [c for c in texts(at, "caption") if c.startswith("Probabilities:")]
    assert probs and len(re.findall(r"\d+%", probs[0])) == 11


def test_finetune_label_save_and_reload(tiny_model, user_dir):
    at = run_page("finetune", model=tiny_model, user=user_dir)
    at.button(key="ft_load_demo").click().run()
    at.text_input(key="ft_label_name").input("my_regions.json")
    at.button(key="ft_save").click().run()
    assert not at.exception
    saved = user_dir / "labels" / "my_regions.json"
    doc = json.loads(saved.read_text())
    demo = json.loads((REPO / "xrfcore" / "data" / "demo_mockup_regions.json").read_text())
    assert doc["version"] == 1 and len(doc["regions"]) == len(demo["regions"])
    assert any(s.startswith(f"Saved {len(demo['regions'])} regions") for s in texts(at, "success"))
    # reload it through the page (the list of saved files is read when the page runs)
    at.run()
    at.selectbox(key="ft_saved").select("my_regions.json").run()
    at.button(key="ft_load_saved").click().run()
    assert not at.exception and not texts(at, "error")


def test_library_rejects_an_invalid_pigment(tiny_model, user_dir):
    at = run_page("library", model=tiny_model, user=user_dir)
    at.text_input(key="lib_name").input("mystery")
    at.text_input(key="lib_abbr").input("MY")
    at.text_input(key="lib_formula").input("Xq2O3")
    at.button[[b.label for b in at.button].index("Validate and add")].click().run()
    assert any(e.startswith("Not added:") for e in texts(at, "error"))
    assert not (user_dir / "library.json").exists()


def test_export_report_names_model_and_scan(tiny_model, user_dir):
    at = run_page("export", model=tiny_model, user=user_dir)
    assert not at.exception
    from xrfcore.registry import sha256_file

    report = [m for m in texts(at, "markdown") if m.startswith("#### XRF Pigment Explorer report")][0]
    assert sha256_file(tiny_model) in report and "demo_mockup.h5" in report
    assert report.count("\n| ") == 11 + 1  # header + one row per pigment


def test_upload_is_copied_to_the_user_folder_once(user_dir):
    import io

    from ui.state import save_upload

    payload = np.random.default_rng(1).integers(0, 255, 300_000, dtype=np.uint8).tobytes()
    upload = io.BytesIO(payload)
    upload.name = "../../scan.npy"  # a browser-supplied name never escapes the upload folder
    first = save_upload(upload)
    assert first.parent == user_dir / "uploads" and first.name.endswith("_scan.npy")
    assert first.read_bytes() == payload
    mtime = first.stat().st_mtime_ns
    upload.seek(0)
    assert save_upload(upload) == first and first.stat().st_mtime_ns == mtime
    assert not list((user_dir / "uploads").glob("*.part"))


def test_library_edit_is_validated_then_saved(tiny_model, user_dir):
    at = run_page("library", model=tiny_model, user=user_dir)
    # a valid edit: change chrome yellow's density through the editor's state
    at.session_state["lib_editor"] = {"edited_rows": {1: {"density_g_cm3": 6.0}}, "added_rows": [], "deleted_rows": []}
    at.button(key="lib_save_edits").click().run()
    assert not at.exception and not texts(at, "error"), texts(at, "error")
    saved = json.loads((user_dir / "library.json").read_text())
    assert [p["density_g_cm3"] for p in saved["pigments"] if p["abbr"] == "CrY"] == [6.0]
    # an invalid edit (negative density) is refused and the saved file stays as it was
    at = run_page("library", model=tiny_model, user=user_dir)
    at.session_state["lib_editor"] = {"edited_rows": {1: {"density_g_cm3": -1.0}}, "added_rows": [], "deleted_rows": []}
    at.button(key="lib_save_edits").click().run()
    assert any(e.startswith("Not saved:") and "density" in e for e in texts(at, "error"))
    assert json.loads((user_dir / "library.json").read_text()) == saved


@pytest.mark.filterwarnings("ignore:.*no energy calibration found")
def test_single_spectrum_file_gets_a_spectrum_first_page(tmp_path, tiny_model, user_dir, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "one.npy", np.random.default_rng(2).poisson(5, (1, 1, 4096)).astype(np.uint16))
    monkeypatch.setenv("XRF_DATA_DIR", str(data))
    at = run_page("scan", model=tiny_model, user=user_dir)
    at.text_input(key="data_path").input("one.npy")
    at.button(key="open_data").click().run()
    for page in ("maps", "inspector"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
        assert any("single spectrum" in i for i in texts(at, "info")), texts(at, "info")
        assert any(c.startswith("Probabilities: CrG") for c in texts(at, "caption"))
        assert not any("of pixels at or above" in c for c in texts(at, "caption"))  # no one-cell maps


def test_hidden_layer_map_greys_where_the_pigment_cannot_be_seen(user_dir):
    """The shipped evidence model on the demo: the hidden view greys the pixels without its key elements' lines
    and says that beneath the surface the map cannot tell there."""
    at = run_page("maps", model=REPO / "models" / "default.keras", user=user_dir)
    assert not at.exception
    assert not [c for c in texts(at, "caption") if c.startswith("Grey: no line of")]  # any layer: off by default
    at.radio(key="maps_layer").set_value("hidden").run()
    assert not at.exception and at.checkbox(key="maps_grey_unseen_hidden").value
    cap = [c for c in texts(at, "caption") if c.startswith("Grey: no line of")]
    assert cap and "the hidden map cannot tell" in cap[0]
    share = float(re.search(r"in (\d+)% of the pixels", cap[0]).group(1))
    assert 0 < share < 100
    at.checkbox(key="maps_grey_unseen_hidden").uncheck().run()
    assert not [c for c in texts(at, "caption") if c.startswith("Grey: no line of")]
    at.radio(key="maps_layer").set_value("surface").run()
    assert not at.exception
