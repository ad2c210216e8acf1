"""Training progress, shared by the CLI (a text bar) and the app (a progress widget).

The protocol is one callable ``fn(epoch, logs)``: ``epoch`` is the 0-based epoch, ``logs`` the
Keras logs (``loss``, ``val_loss``, ``learning_rate``, ...) plus our keys ``stage`` (e.g.
``"fold 2/5"``), ``epochs`` (the planned number of epochs in this stage) and ``event``
(``"epoch"``, or ``"batch"`` with ``batch``/``batches`` when batch events are asked for).
Nothing here imports a UI library.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

import keras

__all__ = ["ProgressCallback", "TextProgressBar", "ProgressFn"]

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


class TextProgressBar:
    """A tiny tqdm-style bar for ``fn(epoch, logs)`` events, written to ``stream`` (stderr).

    Examples
    --------
    >>> import io
    >>> s = io.StringIO()
    >>> bar = TextProgressBar(stream=s, width=10)
    >>> bar(0, {"stage": "fold 1/1", "epochs": 2, "loss": 0.5, "val_loss": 0.4, "event": "epoch"})
    >>> "fold 1/1" in s.getvalue() and "1/2" in s.getvalue()
    True
    """

    def __init__(self, *, stream: TextIO | None = None, width: int = 24):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._t0 = time.monotonic()
        self._stage = None

    def __call__(self, epoch: int, logs: dict[str, Any]) -> None:
        stage = logs.get("stage", "")
        if stage != self._stage:
            if self._stage is not None:
                self.stream.write("\n")
            self._stage, self._t0 = stage, time.monotonic()
        total = logs.get("epochs") or (epoch + 1)
        done = epoch + 1
        if logs.get("event") == "batch" and logs.get("batches"):
            done = epoch + logs["batch"] / logs["batches"]
        frac = min(1.0, done / total)
        n = int(round(frac * self.width))
        bar = "#" * n + "-" * (self.width - n)
        losses = " ".join(f"{k}={logs[k]:.4f}" for k in ("loss", "val_loss") if k in logs)
        elapsed = time.monotonic() - self._t0
        self.stream.write(f"\r{stage} [{bar}] {epoch + 1}/{total} epochs {losses} {elapsed:.0f}s")
        self.stream.flush()

    def close(self) -> None:
        """End the current line."""
        if self._stage is not None:
            self.stream.write("\n")
            self.stream.flush()
