"""Library & training page end to end: simulate a (tiny) dataset and train a model as real
background jobs, then switch to the new model (in this session only)."""

from __future__ import annotations

from pathlib import Path

from app_helpers import default_model_of, run_page, texts


def _wait(job_id: str, timeout_s: float = 240.0):
    from xrfcore.jobs import wait_job

    status = wait_job(job_id, timeout_s=timeout_s)
    assert status.state == "done", (status.state, status.message, status.log_tail[-2000:])
    return status


def _button(at, key):
    return [b for b in at.button if b.key == key][0]


def test_simulate_then_train_then_switch_model(tiny_model, user_dir):
    at = run_page("library", model=tiny_model, user=user_dir)
    # nothing to train on yet: the button waits for a dataset
    assert _button(at, "train_start").disabled
    assert any("Choose a dataset" in i for i in texts(at, "info"))
    # the detector range defaults to the open scan's top energy
    from ui.state import DEMO_SCAN
    from xrfcore.io import open_scan

    assert at.number_input(key="sim_range").value == round(float(open_scan(DEMO_SCAN).energy_kev[-1]), 1)
    at.number_input(key="sim_n").set_value(20)
    at.text_input(key="sim_name").input("tiny_set")
    at.button(key="sim_start").click().run()
    assert not at.exception and not texts(at, "error"), texts(at, "error")
    _wait(at.session_state["sim_job"])
    dataset = user_dir / "datasets" / "tiny_set.h5"
    assert dataset.is_file()

    at.run()  # the page now lists the dataset, has chosen it, and shows the finished simulation
    assert any("finished" in s for s in texts(at, "success"))
    assert at.selectbox(key="train_data").value == str(dataset)
    assert not _button(at, "train_start").disabled
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_folds").set_value(1)
    at.text_input(key="train_name").input("retrained")
    at.button(key="train_start").click().run()
    assert not at.exception and not texts(at, "error"), texts(at, "error")
    status = _wait(at.session_state["train_job"])
    model = Path(status.result["out"])
    assert model.is_file() and model.name == "retrained.keras"

    at.run()
    activate = [b for b in at.button if b.label == "Make retrained.keras the active model"]
    assert activate, [b.label for b in at.button]
    activate[0].click().run()
    assert "retrained.keras" in [m.value.strip("*") for m in at.sidebar.markdown]
    # the choice is this session's: new sessions still start with the default
    assert default_model_of(user_dir) == tiny_model
    other = run_page("maps", model=None, user=user_dir)
    assert "retrained.keras" not in [m.value.strip("*") for m in other.sidebar.markdown]
    # ... until it is made the default explicitly
    at.button(key="sidebar_set_default").click().run()
    assert default_model_of(user_dir).resolve() == model.resolve()


def test_simulation_settings_are_checked_before_the_button_is_enabled(tiny_model, user_dir):
    at = run_page("library", model=tiny_model, user=user_dir)
    assert not _button(at, "sim_start").disabled
    at.number_input(key="sim_kv_lo").set_value(60.0)
    at.number_input(key="sim_kv_hi").set_value(40.0).run()
    assert _button(at, "sim_start").disabled
    assert any("simulation settings are not valid" in e and "tube_kv" in e for e in texts(at, "error"))


def test_model_grid_defaults_fit_the_open_scan(tiny_model, user_dir):
    at = run_page("library", model=tiny_model, user=user_dir)
    grid_n = [n for n in at.number_input if n.label == "model grid channels"][0]
    from ui.state import DEMO_SCAN
    from xrfcore.io import open_scan

    top = float(open_scan(DEMO_SCAN).energy_kev[-1])
    assert 2.8 + 0.02 * grid_n.value <= top + 0.02
    grid_n.set_value(2000).run()
    assert any("above the open scan's top" in w for w in texts(at, "warning"))
