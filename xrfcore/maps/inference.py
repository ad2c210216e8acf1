"""Pigment probability maps for whole scans, chunk by chunk, on Dask.

The scan is wrapped as a ``dask.array`` of row chunks ``(rows, W, C)`` (channel axis in one
chunk) and :func:`_infer_block` is mapped over the chunks: preprocess -> model ->
``(rows, W, K + 1)`` (K probabilities + the pixel's total counts). The same graph runs on
the local threaded scheduler (default) or on a ``dask.distributed`` cluster (``scheduler=
"tcp://host:8786"`` or a ``Client``). Blocks are computed a few at a time and written as
they arrive, so memory stays bounded by a few chunks whatever the scan size.

Shipping the model: workers never receive a pickled Keras model. Each task carries the
model file path and SHA-256; every worker process loads the file once (Keras safe mode) and
caches it. Local runs register the in-memory bundle in the same cache instead.

Output HDF5 layout (:func:`predict_to_h5`)
------------------------------------------
``probabilities`` (H, W, K) float32 in 0-1, chunked by rows; ``pigments`` (K,) class
abbreviations; ``pigment_names`` (K,); ``total_counts`` (H, W) float64; attributes
``model_sha256``, ``model_path``, ``model_classes`` (JSON), ``preprocess`` (PreprocessConfig
JSON), ``calibration`` (JSON), ``scan_source``, ``scan_shape``, ``created``, ``xrfcore_version``.
The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from xrfcore.atomic import atomic_path
from xrfcore.errors import ModelError
from xrfcore.scan import EnergyCalibration, Scan

if TYPE_CHECKING:  # pragma: no cover
    from xrfcore.model.bundle import ModelBundle

__all__ = ["predict_cube", "predict_to_h5", "read_maps", "MapsFile", "timing_summary"]

ProgressFn = Callable[[int, int], None]

#: Per-process cache of loaded models: key -> ModelBundle.
_BUNDLES: dict[str, Any] = {}
_BUNDLES_LOCK = threading.Lock()
#: One forward pass at a time per process (TensorFlow already uses every core).
_MODEL_LOCK = threading.Lock()
#: Seconds spent per stage in this process (local runs; see :func:`timing_summary`).
_TIMINGS: dict[str, float] = {"read_s": 0.0, "preprocess_s": 0.0, "model_s": 0.0, "write_s": 0.0}
_TIMINGS_LOCK = threading.Lock()


def _add_time(key: str, seconds: float) -> None:
    with _TIMINGS_LOCK:
        _TIMINGS[key] = _TIMINGS.get(key, 0.0) + seconds


def timing_summary(*, reset: bool = False) -> dict[str, float]:
    """Seconds spent reading, preprocessing, in the model and writing in this process.

    Stage times are summed over threads, so with several threads they can exceed wall time.
    """
    with _TIMINGS_LOCK:
        out = dict(_TIMINGS)
        if reset:
            for k in _TIMINGS:
                _TIMINGS[k] = 0.0
    return out


class _RowReader:
    """Picklable array facade over a :class:`Scan` that reads validated row blocks."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan
        self.shape = scan.shape
        self.dtype = scan.dtype
        self.ndim = 3

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        rows = key[0] if key else slice(None)
        start, stop, step = rows.indices(self.shape[0]) if isinstance(rows, slice) else (rows, rows + 1, 1)
        if stop <= start:
            return np.zeros((0,) + self.shape[1:], self.dtype)[(slice(None),) + tuple(key[1:])]
        t0 = time.perf_counter()
        block = self.scan.read_rows(start, stop)[::step]
        _add_time("read_s", time.perf_counter() - t0)
        rest = tuple(key[1:])
        return block[(slice(None),) + rest] if rest else block


def _get_bundle(key: str, path: str | None, sha256: str | None) -> Any:
    with _BUNDLES_LOCK:
        bundle = _BUNDLES.get(key)
        if bundle is not None:
            return bundle
        if not path:
            raise ModelError(f"model {key} is not available in this process; save the model to a file first")
        from xrfcore.model.bundle import load_model

        bundle = load_model(path)
        if sha256 and bundle.sha256 != sha256:
            raise ModelError(
                f"model file {path} on this worker has SHA-256 {bundle.sha256[:12]}..., expected {sha256[:12]}...; "
                "all workers must see the same model file (shared storage)"
            )
        _BUNDLES[key] = bundle
        return bundle


def _infer_block(
    block: np.ndarray,
    *,
    model_key: str,
    model_path: str | None,
    model_sha256: str | None,
    calibration: dict[str, float],
    batch_size: int,
) -> np.ndarray:
    """Preprocess + infer one row chunk ``(rows, W, C)`` -> ``(rows, W, K + 1)`` float64.

    The last channel holds each pixel's total counts.
    """
    from xrfcore.model.predict import predict_preprocessed
    from xrfcore.preprocess import preprocess_spectra

    bundle = _get_bundle(model_key, model_path, model_sha256)
    rows, cols, n_ch = block.shape
    k = bundle.n_classes
    out = np.empty((rows, cols, k + 1), dtype=np.float64)
    if block.size == 0:
        return out
    flat = block.reshape(rows * cols, n_ch)
    t0 = time.perf_counter()
    x = preprocess_spectra(flat, EnergyCalibration.from_dict(calibration), bundle.preprocess)
    t1 = time.perf_counter()
    with _MODEL_LOCK:
        t2 = time.perf_counter()
        prob = predict_preprocessed(bundle.model, x, batch_size=batch_size)
        t3 = time.perf_counter()
    _add_time("preprocess_s", t1 - t0)
    _add_time("model_s", t3 - t2)
    out[..., :k] = prob.reshape(rows, cols, k)
    out[..., k] = flat.sum(axis=-1, dtype=np.float64).reshape(rows, cols)
    return out


def _graph(bundle: "ModelBundle", scan: Scan, *, rows_per_chunk: int, batch_size: int, model_key: str) -> Any:
    import dask.array as da

    h, w, c = scan.shape
    src = da.from_array(
        _RowReader(scan), chunks=(rows_per_chunk, w, c), asarray=False, lock=False,
        meta=np.empty((0, 0, 0), dtype=scan.dtype), name=f"xrf-scan-{uuid.uuid4().hex}",
    )
    k = bundle.n_classes
    return src.map_blocks(
        _infer_block,
        dtype=np.float64,
        chunks=(src.chunks[0], (w,), (k + 1,)),
        meta=np.empty((0, 0, 0), dtype=np.float64),
        model_key=model_key,
        model_path=str(Path(bundle.path).resolve()) if bundle.path else None,
        model_sha256=bundle.sha256,
        calibration=scan.calibration.to_dict(),
        batch_size=int(batch_size),
        name=f"xrf-infer-{uuid.uuid4().hex}",
    )


def _check(bundle: "ModelBundle", scan: Scan) -> None:
    from xrfcore.model.bundle import check_compatible

    check_compatible(bundle, scan)


def _iter_results(
    bundle: "ModelBundle",
    scan: Scan,
    *,
    batch_size: int,
    rows_per_chunk: int | None,
    scheduler: Any,
    n_parallel: int | None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(row0, row1, block (rows, W, K + 1))`` as blocks complete (any order)."""
    rows = int(rows_per_chunk or scan.default_chunk_rows())
    if rows < 1:
        raise ValueError(f"rows_per_chunk must be >= 1, got {rows_per_chunk}")
    if scheduler is None or scheduler in ("threads", "sync", "synchronous", "local"):
        key = f"local:{uuid.uuid4().hex}"
        with _BUNDLES_LOCK:
            _BUNDLES[key] = bundle
        try:
            darr = _graph(bundle, scan, rows_per_chunk=rows, batch_size=batch_size, model_key=key)
            yield from _iter_local(darr, rows, scheduler or "threads", n_parallel or min(2, os.cpu_count() or 1))
        finally:
            with _BUNDLES_LOCK:
                _BUNDLES.pop(key, None)
    else:
        if bundle.path is None or bundle.sha256 is None:
            raise ModelError("a dask.distributed run needs a saved model file; save the model (save_model) first")
        key = f"file:{bundle.sha256}"
        darr = _graph(bundle, scan, rows_per_chunk=rows, batch_size=batch_size, model_key=key)
        yield from _iter_distributed(darr, rows, scheduler, n_parallel)


def _block_bounds(darr: Any, rows: int) -> list[tuple[int, int]]:
    bounds, a = [], 0
    for r in darr.chunks[0]:
        bounds.append((a, a + r))
        a += r
    return bounds


def _iter_local(darr: Any, rows: int, scheduler: str, n_parallel: int) -> Iterator[tuple[int, int, np.ndarray]]:
    import dask

    bounds = _block_bounds(darr, rows)
    blocks = [darr.blocks[i] for i in range(len(bounds))]
    sched = "threads" if scheduler in ("threads", "local") else "sync"
    for g in range(0, len(blocks), n_parallel):
        results = dask.compute(*blocks[g : g + n_parallel], scheduler=sched, num_workers=n_parallel)
        for (a, b), res in zip(bounds[g : g + n_parallel], results):
            yield a, b, res


def _iter_distributed(darr: Any, rows: int, scheduler: Any, n_parallel: int | None) -> Iterator[tuple[int, int, np.ndarray]]:
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        n_threads = sum(client.nthreads().values()) or 1
        window = int(n_parallel or 2 * n_threads)
        bounds = _block_bounds(darr, rows)
        pending = list(range(len(bounds)))
        futures = {}

        def submit(i: int) -> Any:
            fut = client.compute(darr.blocks[i])
            futures[fut] = i
            return fut

        for i in pending[:window]:
            submit(i)
        nxt = window
        ac = as_completed(list(futures))
        for fut in ac:
            i = futures.pop(fut)
            res = fut.result()
            fut.release()
            if nxt < len(bounds):
                ac.add(submit(nxt))
                nxt += 1
            a, b = bounds[i]
            yield a, b, res
    finally:
        if own:
            client.close()


def predict_cube(
    bundle: "ModelBundle",
    scan: Scan,
    *,
    batch_size: int = 256,
    rows_per_chunk: int | None = None,
    scheduler: Any = None,
    progress: ProgressFn | None = None,
    n_parallel: int | None = None,
) -> np.ndarray:
    """Probability of every pigment at every pixel, held in memory (for scans that fit).

    Parameters
    ----------
    bundle : ModelBundle
    scan : Scan
        Counts ``(H, W, C)`` (numpy or lazy).
    batch_size : int
        Spectra per forward pass.
    rows_per_chunk : int, optional
        Scan rows per Dask chunk; default ~64 MB of float32 counts per chunk.
    scheduler : None, "threads", "sync", str address or distributed.Client
        None/"threads": local threads; ``"tcp://host:port"`` or a Client: dask.distributed.
    progress : callable(pixels_done, pixels_total), optional
    n_parallel : int, optional
        Chunks in flight at once (local: 2; distributed: 2 x cluster threads).

    Returns
    -------
    (H, W, K) ndarray, float32
        Probabilities (0-1) in the order of ``bundle.classes``.

    Raises
    ------
    CalibrationError
        If the scan's energy range does not cover the model's grid.
    """
    _check(bundle, scan)
    h, w, _ = scan.shape
    k = bundle.n_classes
    out = np.empty((h, w, k), dtype=np.float32)
    done = 0
    for a, b, res in _iter_results(bundle, scan, batch_size=batch_size, rows_per_chunk=rows_per_chunk,
                                   scheduler=scheduler, n_parallel=n_parallel):
        out[a:b] = res[..., :k]
        done += (b - a) * w
        if progress:
            progress(done, h * w)
    return out


def predict_to_h5(
    bundle: "ModelBundle",
    scan: Scan,
    out_path: str | os.PathLike,
    *,
    batch_size: int = 256,
    rows_per_chunk: int | None = None,
    scheduler: Any = None,
    progress: ProgressFn | None = None,
    n_parallel: int | None = None,
    compression: str | None = None,
) -> Path:
    """Stream pigment maps of ``scan`` into an HDF5 file without holding the cube in memory.

    Parameters are those of :func:`predict_cube`, plus

    out_path : path-like
        Output ``.h5``; written under a temporary name and renamed when complete, so an
        interrupted run (Ctrl-C, kill, error) never leaves a partial file under this name.
    compression : {None, "gzip", "lzf"}
        HDF5 compression of ``probabilities``.

    Returns
    -------
    Path
        ``out_path``.

    Notes
    -----
    Peak memory is about ``n_parallel`` raw chunks plus their preprocessed copies
    (default chunk ~64 MB as float32), independent of the scan size.
    """
    import h5py

    _check(bundle, scan)
    h, w, _ = scan.shape
    k = bundle.n_classes
    rows = int(rows_per_chunk or scan.default_chunk_rows())
    final = Path(out_path)
    str_dt = h5py.string_dtype()
    with atomic_path(final) as tmp:
        with h5py.File(tmp, "w") as f:
            probs = f.create_dataset("probabilities", shape=(h, w, k), dtype=np.float32,
                                     chunks=(max(1, min(rows, h)), w, k), compression=compression)
            probs.attrs["units"] = "probability (0-1)"
            total = f.create_dataset("total_counts", shape=(h, w), dtype=np.float64,
                                     chunks=(max(1, min(rows, h)), w))
            f.create_dataset("pigments", data=np.array(bundle.classes, dtype=object), dtype=str_dt)
            f.create_dataset("pigment_names", data=np.array(bundle.class_names, dtype=object), dtype=str_dt)
            _write_attrs(f, bundle, scan)
            done = 0
            for a, b, res in _iter_results(bundle, scan, batch_size=batch_size, rows_per_chunk=rows,
                                           scheduler=scheduler, n_parallel=n_parallel):
                t0 = time.perf_counter()
                probs[a:b] = res[..., :k].astype(np.float32)
                total[a:b] = res[..., k]
                _add_time("write_s", time.perf_counter() - t0)
                done += (b - a) * w
                if progress:
                    progress(done, h * w)
            f.attrs["complete"] = True
    return final


def _write_attrs(f: Any, bundle: "ModelBundle", scan: Scan) -> None:
    from xrfcore import __version__

    f.attrs["model_sha256"] = bundle.sha256 or ""
    f.attrs["model_path"] = str(bundle.path) if bundle.path else ""
    f.attrs["model_classes"] = json.dumps(list(bundle.classes))
    f.attrs["preprocess"] = bundle.preprocess.to_json()
    f.attrs["calibration"] = json.dumps(scan.calibration.to_dict())
    f.attrs["scan_source"] = str(scan.metadata.source)
    f.attrs["scan_shape"] = np.array(scan.shape, dtype=np.int64)
    f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    f.attrs["xrfcore_version"] = __version__


class MapsFile:
    """Contents of a maps HDF5 file (:func:`read_maps`)."""

    def __init__(self, probabilities: np.ndarray, pigments: list[str], pigment_names: list[str],
                 total_counts: np.ndarray, attrs: dict[str, Any]) -> None:
        self.probabilities = probabilities
        self.pigments = pigments
        self.pigment_names = pigment_names
        self.total_counts = total_counts
        self.attrs = attrs


def read_maps(path: str | os.PathLike) -> MapsFile:
    """Read a maps file written by :func:`predict_to_h5` (everything in memory)."""
    import h5py

    from xrfcore.errors import ScanReadError

    try:
        with h5py.File(path, "r") as f:
            return MapsFile(
                f["probabilities"][()],
                [s.decode() if isinstance(s, bytes) else str(s) for s in f["pigments"][()]],
                [s.decode() if isinstance(s, bytes) else str(s) for s in f["pigment_names"][()]],
                f["total_counts"][()],
                {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
            )
    except (OSError, KeyError) as exc:
        raise ScanReadError(f"{path} is not a pigment-maps file written by `xrfcore predict` ({exc})") from exc
