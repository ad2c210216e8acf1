"""Small helpers shared across xrfcore: file digests, JSON-safe copies, timestamps.

Nothing here imports a heavy library; each helper exists once (issue: the same helper under
different names in the registry, the model bundle, the jobs and the training code).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
from typing import Any

__all__ = ["sha256_file", "json_safe", "utc_now"]


def sha256_file(path: str | os.PathLike, *, block: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in blocks of ``block`` bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def json_safe(obj: Any) -> Any:
    """Copy of ``obj`` that ``json.dumps(allow_nan=False)`` accepts: NaN/inf -> None, numpy -> Python.

    Examples
    --------
    >>> import numpy as np
    >>> json_safe({"a": np.float32(0.5), "b": [np.int64(2), float("nan")], 3: np.arange(2)})
    {'a': 0.5, 'b': [2, None], '3': [0, 1]}
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        obj = obj.item()
    elif hasattr(obj, "tolist"):
        return json_safe(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def utc_now() -> str:
    """The current UTC time as ISO 8601 to the second (``2026-11-24T20:15:00+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
