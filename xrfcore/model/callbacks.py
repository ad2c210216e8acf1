"""Keras training events as ``fn(epoch, logs)`` calls (turned into ``Progress`` by :mod:`xrfcore.workflows`).

The protocol is one callable ``fn(epoch, logs)``: ``epoch`` is the 0-based epoch, ``logs`` the
Keras logs (``loss``, ``val_loss``, ``learning_rate``, ...) plus our keys ``stage`` (e.g.
``"fold 2/5"``), ``epochs`` (the planned number of epochs in this stage) and ``event``
(``"epoch"``, or ``"batch"`` with ``batch``/``batches`` when batch events are asked for).
Nothing here imports a UI library.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

__all__ = ["ProgressCallback", "ProgressFn"]

ProgressFn = Callable[[int, dict[str, Any]], None]


class ProgressCallback(keras.callbacks.Callback):
    """Forward Keras epoch (and optionally batch) events to ``fn(epoch, logs)``.

    Parameters
    ----------
    fn : callable
        Called as ``fn(epoch, logs)`` (see the module docstring).
    stage : str
        Label added to ``logs["stage"]``.
    epochs : int or None
        Planned epochs, added to ``logs["epochs"]``.
    batch_every : int
        Also report every ``batch_every`` training batches (0 = epochs only).
    """

    def __init__(self, fn: ProgressFn, *, stage: str = "", epochs: int | None = None, batch_every: int = 0):
        super().__init__()
        self.fn = fn
        self.stage = stage
        self.epochs = epochs
        self.batch_every = int(batch_every)
        self._epoch = 0

    def _extra(self, event: str) -> dict[str, Any]:
        return {"stage": self.stage, "epochs": self.epochs, "event": event}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        out = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        self.fn(epoch, {**out, **self._extra("epoch")})

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.batch_every <= 0 or (batch + 1) % self.batch_every:
            return
        steps = (self.params or {}).get("steps")
        out = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        self.fn(self._epoch, {**out, **self._extra("batch"), "batch": batch + 1, "batches": steps})


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True
