"""ProgressCallback forwards Keras events (the CLI bar is xrfcore.workflows.ConsoleProgress)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from xrfcore.model.callbacks import ProgressCallback  # noqa: E402


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
