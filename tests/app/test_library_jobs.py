"""Library & training page end to end: simulate a (tiny) dataset and train a model as real
background jobs, then switch to the new model."""

from __future__ import annotations

from pathlib import Path

from app_helpers import run_page, texts


def _wait(job_id: str, timeout_s: float = 240.0):
    from xrfcore.jobs import wait_job

    status = wait_job(job_id, timeout_s=timeout_s)
    assert status.state == "done", (status.state, status.message, status.log_tail[-2000:])
    return status


def test_simulate_then_train_then_switch_model(tiny_model, user_dir):
    at = run_page("library", model=tiny_model, user=user_dir)
    at.number_input(key="sim_n").set_value(20)
    at.text_input(key="sim_name").input("tiny_set")
    at.button(key="sim_start").click().run()
    assert not at.exception and not texts(at, "error"), texts(at, "error")
    _wait(at.session_state["sim_job"])
    dataset = user_dir / "datasets" / "tiny_set.h5"
    assert dataset.is_file()

    at.run()  # the page now lists the dataset and shows the finished simulation
    assert any(s.startswith("Job ") and "finished" in s for s in texts(at, "success"))
    at.selectbox(key="train_data").select(str(dataset))
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
    assert (user_dir / "active_model.txt").read_text().strip() == str(model.resolve())
    assert "retrained.keras" in [m.value.strip("*") for m in at.sidebar.markdown]
