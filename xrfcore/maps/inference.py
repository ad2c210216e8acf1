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

__all__ = ["predict_cube", "predict_maps", "predict_to_h5", "read_maps", "MapsFile", "timing_summary", "packed_layout"]

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


def packed_layout(bundle: "ModelBundle", n_unexplained: int = 0) -> dict[str, slice]:
    """Where each result sits in the per-pixel vectors :func:`_infer_block` returns.

    Heads of the model (``any``; for evidence models ``groups``, ``surface``, ``hidden`` and ``seen``: 0/1 per
    class, its key elements significant), then ``unexplained`` (0/1 per candidate element), then ``total``
    (the pixel's total counts).
    """
    from xrfcore.model.evidence_model import spec_of

    spec = spec_of(bundle)
    sizes = {**spec.layout.sizes(), "seen": bundle.n_classes} if spec is not None else {"any": bundle.n_classes}
    sizes = {**sizes, "unexplained": int(n_unexplained), "total": 1}
    out, a = {}, 0
    for name, n in sizes.items():
        out[name] = slice(a, a + n)
        a += n
    return out


def _infer_block(
    block: np.ndarray,
    *,
    model_key: str,
    model_path: str | None,
    model_sha256: str | None,
    calibration: dict[str, float],
    batch_size: int,
    evidence_config: dict | None = None,
    unexplained: tuple[str, ...] = (),
) -> np.ndarray:
    """Preprocess + evidence + infer one row chunk ``(rows, W, C)`` -> ``(rows, W, D)`` float64.

    ``D`` and the meaning of each entry: :func:`packed_layout`.
    """
    from xrfcore.elements.evidence import EvidenceConfig, fit_evidence
    from xrfcore.elements.unexplained import unexplained_flags
    from xrfcore.model.evidence_model import key_elements_seen, model_inputs, postprocess, spec_of
    from xrfcore.model.predict import predict_preprocessed

    bundle = _get_bundle(model_key, model_path, model_sha256)
    rows, cols, n_ch = block.shape
    layout = packed_layout(bundle, len(unexplained))
    width = max(sl.stop for sl in layout.values())
    out = np.zeros((rows, cols, width), dtype=np.float64)
    if block.size == 0:
        return out
    flat = block.reshape(rows * cols, n_ch)
    cal = EnergyCalibration.from_dict(calibration)
    ev_cfg = EvidenceConfig.from_dict(evidence_config) if evidence_config else None
    t0 = time.perf_counter()
    inputs, extras = model_inputs(bundle, flat, cal, evidence_config=ev_cfg)
    t1 = time.perf_counter()
    with _MODEL_LOCK:
        t2 = time.perf_counter()
        raw = predict_preprocessed(bundle.model, inputs, batch_size=batch_size)
        t3 = time.perf_counter()
    heads = postprocess(bundle, raw, extras)
    _add_time("preprocess_s", t1 - t0)
    _add_time("model_s", t3 - t2)
    for name, values in heads.items():
        out[..., layout[name]] = values.reshape(rows, cols, -1)
    if extras is not None and "seen" in layout:
        out[..., layout["seen"]] = key_elements_seen(spec_of(bundle), extras["z"], extras["known"]).reshape(rows, cols, -1)
    if unexplained:
        ev = extras["evidence"] if extras else fit_evidence(flat, cal, ev_cfg or EvidenceConfig())
        out[..., layout["unexplained"]] = unexplained_flags(ev, unexplained).reshape(rows, cols, -1)
    total = extras["evidence"].total_counts if extras else flat.sum(axis=-1, dtype=np.float64)  # the fit summed them
    out[..., layout["total"]] = total.reshape(rows, cols, 1)
    return out


def _graph(bundle: "ModelBundle", scan: Scan, *, rows_per_chunk: int, batch_size: int, model_key: str,
           evidence_config: dict | None = None, unexplained: tuple[str, ...] = ()) -> Any:
    import dask.array as da

    h, w, c = scan.shape
    src = da.from_array(
        _RowReader(scan), chunks=(rows_per_chunk, w, c), asarray=False, lock=False,
        meta=np.empty((0, 0, 0), dtype=scan.dtype), name=f"xrf-scan-{uuid.uuid4().hex}",
    )
    width = max(sl.stop for sl in packed_layout(bundle, len(unexplained)).values())
    return src.map_blocks(
        _infer_block,
        dtype=np.float64,
        chunks=(src.chunks[0], (w,), (width,)),
        meta=np.empty((0, 0, 0), dtype=np.float64),
        model_key=model_key,
        model_path=str(Path(bundle.path).resolve()) if bundle.path else None,
        model_sha256=bundle.sha256,
        calibration=scan.calibration.to_dict(),
        batch_size=int(batch_size),
        evidence_config=evidence_config,
        unexplained=tuple(unexplained),
        name=f"xrf-infer-{uuid.uuid4().hex}",
    )


def _check(bundle: "ModelBundle", scan: Scan, allow_short_range: bool = False) -> float:
    """Check the scan covers the model's grid; returns the covered share (0-1).

    With ``allow_short_range`` a scan that stops short of the grid (a 20 keV synchrotron map) is
    accepted: the grid's missing part is zero-padded, and element evidence there is unknown.
    """
    from xrfcore.errors import CalibrationError
    from xrfcore.model.bundle import check_compatible

    from xrfcore.preprocess.grid import grid_coverage

    grid = bundle.preprocess.grid
    share = grid_coverage(scan.calibration, scan.n_channels, grid)
    if not allow_short_range:
        check_compatible(bundle, scan)
    elif share < 0.3:
        raise CalibrationError(f"the scan covers only {100 * share:.0f}% of the model's {grid.start_kev:.2f}-"
                               f"{grid.stop_kev:.2f} keV grid, too little even with --allow-short-range; check the "
                               "scan's energy calibration or use a model trained for this energy range")
    return share


def _iter_results(
    bundle: "ModelBundle",
    scan: Scan,
    *,
    batch_size: int,
    rows_per_chunk: int | None,
    scheduler: Any,
    n_parallel: int | None,
    evidence_config: dict | None = None,
    unexplained: tuple[str, ...] = (),
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(row0, row1, block (rows, W, D))`` as blocks complete (any order); D: :func:`packed_layout`."""
    rows = int(rows_per_chunk or scan.default_chunk_rows())
    if rows < 1:
        raise ValueError(f"rows_per_chunk must be >= 1, got {rows_per_chunk}")
    if scheduler is None or scheduler in ("threads", "sync", "synchronous", "local"):
        key = f"local:{uuid.uuid4().hex}"
        with _BUNDLES_LOCK:
            _BUNDLES[key] = bundle
        try:
            darr = _graph(bundle, scan, rows_per_chunk=rows, batch_size=batch_size, model_key=key,
                          evidence_config=evidence_config, unexplained=unexplained)
            yield from _iter_local(darr, rows, scheduler or "threads", n_parallel or 1)
        finally:
            with _BUNDLES_LOCK:
                _BUNDLES.pop(key, None)
    else:
        if bundle.path is None or bundle.sha256 is None:
            raise ModelError("a dask.distributed run needs a saved model file; save the model (save_model) first")
        key = f"file:{bundle.sha256}"
        darr = _graph(bundle, scan, rows_per_chunk=rows, batch_size=batch_size, model_key=key,
                      evidence_config=evidence_config, unexplained=unexplained)
        yield from _iter_distributed(darr, rows, scheduler, n_parallel)


def _block_bounds(darr: Any, rows: int) -> list[tuple[int, int]]:
    bounds, a = [], 0
    for r in darr.chunks[0]:
        bounds.append((a, a + r))
        a += r
    return bounds


def _iter_local(darr: Any, rows: int, scheduler: str, n_parallel: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Blocks on ``n_parallel`` threads, a new one started as each finishes (no barrier between groups):
    the numpy work of one block (rebinning, element fit) runs while another holds the model."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    from itertools import islice

    bounds = _block_bounds(darr, rows)
    if scheduler not in ("threads", "local") or n_parallel <= 1:
        for i, (a, b) in enumerate(bounds):
            yield a, b, darr.blocks[i].compute(scheduler="sync")
        return
    with ThreadPoolExecutor(max_workers=n_parallel, thread_name_prefix="xrf-infer") as pool:
        todo = iter(range(len(bounds)))
        running = {pool.submit(darr.blocks[i].compute, scheduler="sync"): i for i in islice(todo, n_parallel)}
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = running.pop(fut)
                    for nxt in islice(todo, 1):
                        running[pool.submit(darr.blocks[nxt].compute, scheduler="sync")] = nxt
                    a, b = bounds[i]
                    yield a, b, fut.result()
        finally:
            for fut in running:
                fut.cancel()


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


def _setup(bundle: "ModelBundle", scan: Scan, *, allow_short_range: bool, unexplained: bool,
           library=None) -> tuple[float, dict | None, tuple[str, ...]]:
    """Covered share, evidence config (dict) for the scan, unexplained-element candidates."""
    from xrfcore.elements.evidence import EvidenceConfig, config_for_scan
    from xrfcore.elements.unexplained import explained_elements, unexplained_candidates
    from xrfcore.model.evidence_model import spec_of

    share = _check(bundle, scan, allow_short_range)
    spec = spec_of(bundle)
    if spec is None and not unexplained:
        return share, None, ()
    base = spec.evidence if spec is not None else EvidenceConfig()
    cfg = config_for_scan(scan, base)
    candidates: tuple[str, ...] = ()
    if unexplained:
        candidates = tuple(unexplained_candidates(cfg.elements, explained_elements(library, anode=cfg.anode)))
    return share, cfg.to_dict(), candidates


def predict_maps(
    bundle: "ModelBundle",
    scan: Scan,
    *,
    batch_size: int = 256,
    rows_per_chunk: int | None = None,
    scheduler: Any = None,
    progress: ProgressFn | None = None,
    n_parallel: int | None = None,
    allow_short_range: bool = False,
    unexplained: bool = True,
) -> dict[str, Any]:
    """Every map of a scan in memory: ``any`` (H, W, K) and, for evidence models, ``groups``,
    ``surface``, ``hidden`` and ``seen`` (H, W, K) uint8 (1 where the class's key elements are significant:
    :func:`~xrfcore.model.evidence_model.key_elements_seen`); ``unexplained`` (H, W, E) uint8 with
    ``unexplained_elements`` (E,) the elements flagged somewhere; ``total_counts`` (H, W); ``covered_share``
    of the model's grid; ``evidence_config`` (dict or None)."""
    share, ev_cfg, candidates = _setup(bundle, scan, allow_short_range=allow_short_range, unexplained=unexplained)
    h, w, _ = scan.shape
    layout = packed_layout(bundle, len(candidates))
    out = {name: np.zeros((h, w, sl.stop - sl.start), np.float32) for name, sl in layout.items()}
    done = 0
    for a, b, res in _iter_results(bundle, scan, batch_size=batch_size, rows_per_chunk=rows_per_chunk,
                                   scheduler=scheduler, n_parallel=n_parallel, evidence_config=ev_cfg,
                                   unexplained=candidates):
        for name, sl in layout.items():
            out[name][a:b] = res[..., sl]
        done += (b - a) * w
        if progress:
            progress(done, h * w)
    flags = out.pop("unexplained").astype(np.uint8)
    keep = [i for i in range(len(candidates)) if flags[..., i].any()]
    result: dict[str, Any] = dict(out)
    if "seen" in result:
        result["seen"] = (result["seen"] > 0.5).astype(np.uint8)
    result["total_counts"] = result.pop("total")[..., 0].astype(np.float64)
    result["unexplained"] = flags[..., keep]
    result["unexplained_elements"] = [candidates[i] for i in keep]
    result["covered_share"] = share
    result["evidence_config"] = ev_cfg
    return result


def predict_cube(
    bundle: "ModelBundle",
    scan: Scan,
    *,
    batch_size: int = 256,
    rows_per_chunk: int | None = None,
    scheduler: Any = None,
    progress: ProgressFn | None = None,
    n_parallel: int | None = None,
    allow_short_range: bool = False,
) -> np.ndarray:
    """Probability of every pigment at every pixel (any layer), held in memory (for scans that fit).

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
        Chunks in flight at once (local: 1, because the model's own threads already use every core and a
        second chunk's element fit beside them slows both: on 2 cores the evidence model ran at 0.65x of
        the plain CNN with 2, 0.72x with 1; distributed: 2 x cluster threads).
    allow_short_range : bool
        Accept a scan that stops short of the model's grid (zero-padded; evidence there unknown).

    Returns
    -------
    (H, W, K) ndarray, float32
        Probabilities (0-1) in the order of ``bundle.classes``. :func:`predict_maps` gives the
        other maps too.

    Raises
    ------
    CalibrationError
        If the scan's energy range does not cover the model's grid.
    """
    return predict_maps(bundle, scan, batch_size=batch_size, rows_per_chunk=rows_per_chunk, scheduler=scheduler,
                        progress=progress, n_parallel=n_parallel, allow_short_range=allow_short_range,
                        unexplained=False)["any"]


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
    allow_short_range: bool = False,
    unexplained: bool = True,
) -> Path:
    """Stream pigment maps of ``scan`` into an HDF5 file without holding the cube in memory.

    Parameters are those of :func:`predict_cube`, plus

    out_path : path-like
        Output ``.h5``; written under a temporary name and renamed when complete, so an
        interrupted run (Ctrl-C, kill, error) never leaves a partial file under this name.
    compression : {None, "gzip", "lzf"}
        HDF5 compression of ``probabilities``.
    unexplained : bool
        Also write the unexplained-element maps (module docstring).

    Returns
    -------
    Path
        ``out_path``.

    Notes
    -----
    Peak memory is about ``n_parallel`` raw chunks plus their preprocessed copies
    (default chunk ~64 MB as float32), independent of the scan size; the unexplained flags are
    collected in memory as uint8 (H x W x candidates) and only the flagged elements are written.
    """
    import h5py

    share, ev_cfg, candidates = _setup(bundle, scan, allow_short_range=allow_short_range, unexplained=unexplained)
    h, w, _ = scan.shape
    layout = packed_layout(bundle, len(candidates))
    rows = int(rows_per_chunk or scan.default_chunk_rows())
    final = Path(out_path)
    str_dt = h5py.string_dtype()
    names = {"any": "probabilities", "groups": "probabilities_groups", "surface": "probabilities_surface",
             "hidden": "probabilities_hidden"}
    flags = np.zeros((h, w, len(candidates)), np.uint8)
    with atomic_path(final) as tmp:
        with h5py.File(tmp, "w") as f:
            dsets = {}
            for head, name in names.items():
                if head in layout:
                    k = layout[head].stop - layout[head].start
                    dsets[head] = f.create_dataset(name, shape=(h, w, k), dtype=np.float32,
                                                   chunks=(max(1, min(rows, h)), w, k), compression=compression)
                    dsets[head].attrs["units"] = "probability (0-1)"
            if "seen" in layout:
                k = bundle.n_classes
                dsets["seen"] = f.create_dataset("key_elements_seen", shape=(h, w, k), dtype=np.uint8,
                                                 chunks=(max(1, min(rows, h)), w, k), compression=compression)
                dsets["seen"].attrs["meaning"] = (
                    "1 where every key element of the pigment is significant; 0: no line of it in the spectrum "
                    "(absent from the surface; beneath, absent or under paint that absorbs its lines: cannot tell)")
            total = f.create_dataset("total_counts", shape=(h, w), dtype=np.float64,
                                     chunks=(max(1, min(rows, h)), w))
            f.create_dataset("pigments", data=np.array(bundle.classes, dtype=object), dtype=str_dt)
            f.create_dataset("pigment_names", data=np.array(bundle.class_names, dtype=object), dtype=str_dt)
            from xrfcore.model.evidence_model import spec_of

            spec = spec_of(bundle)
            if spec is not None:
                f.create_dataset("group_names", data=np.array(spec.layout.groups, dtype=object), dtype=str_dt)
            _write_attrs(f, bundle, scan)
            f.attrs["covered_share"] = share
            f.attrs["evidence_config"] = json.dumps(ev_cfg) if ev_cfg else ""
            done = 0
            for a, b, res in _iter_results(bundle, scan, batch_size=batch_size, rows_per_chunk=rows,
                                           scheduler=scheduler, n_parallel=n_parallel, evidence_config=ev_cfg,
                                           unexplained=candidates):
                t0 = time.perf_counter()
                for head, ds in dsets.items():
                    ds[a:b] = (res[..., layout[head]] > 0.5 if head == "seen" else res[..., layout[head]]).astype(ds.dtype)
                total[a:b] = res[..., layout["total"]][..., 0]
                if candidates:
                    flags[a:b] = res[..., layout["unexplained"]] > 0.5
                _add_time("write_s", time.perf_counter() - t0)
                done += (b - a) * w
                if progress:
                    progress(done, h * w)
            keep = [i for i in range(len(candidates)) if flags[..., i].any()]
            f.create_dataset("unexplained_elements", data=np.array([candidates[i] for i in keep], dtype=object),
                             dtype=str_dt)
            f.create_dataset("unexplained", data=flags[..., keep], chunks=True if keep else None,
                             compression="gzip" if keep else None)
            f["unexplained"].attrs["meaning"] = ("1 where the element's lines are significant and nothing in the "
                                                 "model's library, the ground, binder, air or tube explains them")
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
                 total_counts: np.ndarray, attrs: dict[str, Any], *, surface: np.ndarray | None = None,
                 hidden: np.ndarray | None = None, groups: np.ndarray | None = None,
                 group_names: list[str] | None = None, unexplained: np.ndarray | None = None,
                 unexplained_elements: list[str] | None = None, seen: np.ndarray | None = None) -> None:
        self.probabilities = probabilities
        self.pigments = pigments
        self.pigment_names = pigment_names
        self.total_counts = total_counts
        self.attrs = attrs
        self.surface = surface
        self.hidden = hidden
        self.groups = groups
        self.group_names = group_names or []
        self.unexplained = unexplained
        self.unexplained_elements = unexplained_elements or []
        #: (H, W, K) uint8 or None (files of plain CNNs and of earlier versions): key elements significant
        self.seen = seen


def read_maps(path: str | os.PathLike) -> MapsFile:
    """Read a maps file written by :func:`predict_to_h5` (everything in memory)."""
    import h5py

    from xrfcore.errors import ScanReadError

    def strings(ds) -> list[str]:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in ds[()]]

    try:
        with h5py.File(path, "r") as f:
            opt = {k: (f[k][()] if k in f else None) for k in ("probabilities_surface", "probabilities_hidden",
                                                               "probabilities_groups", "unexplained",
                                                               "key_elements_seen")}
            return MapsFile(
                f["probabilities"][()],
                strings(f["pigments"]),
                strings(f["pigment_names"]),
                f["total_counts"][()],
                {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
                surface=opt["probabilities_surface"], hidden=opt["probabilities_hidden"],
                groups=opt["probabilities_groups"],
                group_names=strings(f["group_names"]) if "group_names" in f else None,
                unexplained=opt["unexplained"],
                unexplained_elements=strings(f["unexplained_elements"]) if "unexplained_elements" in f else None,
                seen=opt["key_elements_seen"],
            )
    except (OSError, KeyError) as exc:
        raise ScanReadError(f"{path} is not a pigment-maps file written by `xrfcore predict` ({exc})") from exc
