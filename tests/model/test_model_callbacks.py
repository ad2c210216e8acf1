"""ProgressCallback forwards Keras events; TextProgressBar draws them."""

from __future__ import annotations

import io

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from xrfcore.model.callbacks import ProgressCallback, TextProgressBar  # noqa: E402


def test_progress_callback_epochs_and_batches():
    events = []
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    y = (x[:, :1] > 0.5).astype(np.float32)
    cb = ProgressCallback(lambda e, logs: events.append((e, logs)), stage="fold 1/1", epochs=2, batch_every=2)
    model.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[cb])
    epochs = [(e, lg) for e, lg in events if lg["event"] == "epoch"]
    batches = [(e, lg) for e, lg in events if lg["event"] == "batch"]
    assert [e for e, _ in epochs] == [0, 1]
    assert all(lg["stage"] == "fold 1/1" and lg["epochs"] == 2 and isinstance(lg["loss"], float) for _, lg in epochs)
    assert [(e, lg["batch"], lg["batches"]) for e, lg in batches] == [(0, 2, 4), (0, 4, 4), (1, 2, 4), (1, 4, 4)]


def test_text_progress_bar():
    s = io.StringIO()
    bar = TextProgressBar(stream=s, width=10)
    bar(0, {"stage": "fold 1/2", "epochs": 4, "loss": 0.5, "event": "epoch"})
    bar(1, {"stage": "fold 1/2", "epochs": 4, "loss": 0.25, "val_loss": 0.3, "event": "epoch"})
    bar(0, {"stage": "fold 2/2", "epochs": 4, "loss": 0.5, "event": "epoch"})
    bar.close()
    text = s.getvalue()
    assert "fold 1/2 [#####-----] 2/4 epochs loss=0.2500 val_loss=0.3000" in text
    assert "\n\rfold 2/2 [##--------] 1/4" in text  # a new stage starts a new line
    assert text.endswith("\n")
