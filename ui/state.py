"""Session state, folders and caches shared by the pages.

The active scan is a :class:`ScanRef` (path + modification time + size + optional calibration
override): a plain, hashable tuple, so caches are keyed by *what file and which version* and
never by hashing large arrays. The scan itself and the model are cached with
``st.cache_resource`` (one shared object); small derived arrays (sum spectrum, element maps)
with ``st.cache_data`` keyed by the ``ScanRef``. The probability cube can be large, so it lives
in a bounded ``st.cache_resource`` store and is computed outside it with a progress bar.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import streamlit as st

import xrfcore
from xrfcore.errors import XRFError
from xrfcore.scan import EnergyCalibration

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_SCAN = Path(xrfcore.__file__).resolve().parent / "data" / "demo_mockup.h5"
DEMO_REGIONS = DEMO_SCAN.with_name("demo_mockup_regions.json")



def user_dir() -> Path:
    """Folder for uploads, label files, user models and the user's library (``XRF_USER_DIR``), created."""
    from xrfcore.paths import user_dir as base

    path = base()
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_subdir(name: str) -> Path:
    path = user_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """Server-side scan folder (``XRF_DATA_DIR``, default ``data/`` of the repo); None if missing."""
    path = Path(os.environ.get("XRF_DATA_DIR") or REPO_ROOT / "data").expanduser().resolve()
    return path if path.is_dir() else None


def resolve_in_data_dir(name: str) -> Path:
    """Resolve ``name`` (relative to the data folder, or absolute) and refuse paths outside it.

    Raises
    ------
    PermissionError
        If the path is outside the data folder (after resolving ``..`` and links).
    FileNotFoundError
        If there is no data folder or no such file.
    """
    root = data_dir()
    if root is None:
        raise FileNotFoundError("no server-side data folder; set XRF_DATA_DIR to a folder of scans")
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise PermissionError(f"{name!r} is outside the data folder {root}; only files inside it can be opened")
    if not path.is_file():
        raise FileNotFoundError(f"no file {name!r} in the data folder {root}")
    return path


def list_data_files(limit: int = 500) -> list[str]:
    """Scan files inside the data folder, as paths relative to it (sorted, at most ``limit``)."""
    from xrfcore.io import supported_suffixes

    root = data_dir()
    if root is None:
        return []
    suffixes = set(supported_suffixes())
    found: list[str] = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in suffixes:
            found.append(str(p.relative_to(root)))
            if len(found) >= limit:
                break
    return found


def require_router() -> None:
    """Make sure the page runs inside ``app.py``'s ``st.navigation`` (call at the top of a page).

    Streamlit runs a page file alone (legacy ``pages/`` mode: no router, no sidebar, no page
    config) until some run of ``app.py`` has called ``st.navigation`` in this process: on a fresh
    server that is every deep link such as ``/inspector``, and in ``AppTest`` every run. Then
    run the router here, in the same script run (so widget events are kept), and stop.
    """
    import runpy

    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(REPO_ROOT / "app.py"), run_name="__main__")
        st.stop()


# -- the session's work, kept over a reload (``?session=<id>`` in the URL) ------------------------
def restore_session() -> None:
    """Give this browser session an id in the URL and, on a reload or a new tab, restore its work.

    Call once at the top of ``app.py``. The id is put back into the URL on every run (a page
    switch clears the URL's query parameters).
    """
    from ui.session_store import load_session, new_session_id, valid_session_id

    sid = st.session_state.get("_session_id")
    if sid is None:
        asked = st.query_params.get("session")
        sid = asked if valid_session_id(asked) else new_session_id()
        st.session_state["_session_id"] = sid
        if asked == sid:
            _apply_saved(load_session(user_subdir("sessions"), sid))
    if st.query_params.get("session") != sid:
        st.query_params["session"] = sid


def _apply_saved(saved: dict) -> None:
    scan = saved.get("scan")
    if isinstance(scan, dict) and Path(str(scan.get("path", ""))).is_file():
        cal = scan.get("calibration")
        try:
            cal = EnergyCalibration(*cal) if cal else None
            st.session_state["scan_ref"] = make_ref(scan["path"], label=str(scan.get("label", "")), calibration=cal)
        except (XRFError, TypeError, ValueError):
            saved = {}  # a damaged entry: start from the default scan, keep nothing that belongs to it
    elif scan is not None:
        st.session_state["restore_note"] = (f"The scan of this session ({scan.get('label', '?') if isinstance(scan, dict) else '?'}) "
                                            "is no longer on the server; the default scan is open instead.")
        saved = {k: v for k, v in saved.items() if k in ("model_path", "sim_job", "train_job", "last_dataset")}
    if isinstance(saved.get("pixel"), list) and len(saved["pixel"]) == 2:
        st.session_state["pixel"] = tuple(int(v) for v in saved["pixel"])
    if isinstance(saved.get("regions"), list):
        import pandas as pd

        st.session_state["regions"] = saved["regions"]
        st.session_state["regions_table"] = pd.DataFrame(saved["regions"])
    for key in ("model_path", "ft_labels_path", "last_dataset"):
        if isinstance(saved.get(key), str) and Path(saved[key]).is_file():
            st.session_state[key] = saved[key]
    for key in ("ft_job", "sim_job", "train_job"):
        if isinstance(saved.get(key), str):
            st.session_state[key] = saved[key]
    if isinstance(saved.get("threshold"), (int, float)):
        st.session_state["threshold"] = float(saved["threshold"])


def save_session() -> None:
    """Write this session's work to the store if it changed (call at the end of every run)."""
    from ui.session_store import save_session as write

    sid = st.session_state.get("_session_id")
    if sid is None:
        return
    ref = st.session_state.get("scan_ref")
    values = {k: st.session_state.get(k) for k in ("regions", "model_path", "ft_job", "sim_job", "train_job",
                                                  "ft_labels_path", "last_dataset", "threshold")}
    if ref is not None:
        values["scan"] = {"path": ref.path, "label": ref.label,
                          "calibration": list(ref.calibration) if ref.calibration else None}
    pixel = st.session_state.get("pixel")
    values["pixel"] = [int(pixel[0]), int(pixel[1])] if pixel is not None else None
    write(user_subdir("sessions"), sid, values)


# -- the active scan ---------------------------------------------------------------------------
class ScanRef(NamedTuple):
    """What identifies a loaded scan: file, version, and calibration override (keV) if any."""

    path: str
    mtime_ns: int
    size: int
    calibration: tuple[float, float, float] | None = None
    label: str = ""

    @property
    def key(self) -> str:
        """Short id string for caches and file names."""
        text = f"{self.path}|{self.mtime_ns}|{self.size}|{self.calibration}"
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def make_ref(path: str | Path, *, label: str = "", calibration: EnergyCalibration | None = None) -> ScanRef:
    p = Path(path).resolve()
    st_ = p.stat()
    cal = None
    if calibration is not None:
        cal = (calibration.offset_kev, calibration.gain_kev, calibration.quadratic_kev)
    return ScanRef(str(p), st_.st_mtime_ns, st_.st_size, cal, label or p.name)


def set_scan(path: str | Path, *, label: str = "", calibration: EnergyCalibration | None = None) -> None:
    """Make ``path`` the active scan (clears the selected pixel and regions unless only the calibration changed)."""
    old = st.session_state.get("scan_ref")
    new = make_ref(path, label=label, calibration=calibration)
    st.session_state["scan_ref"] = new
    if old is None or old.path != new.path:
        for k in ("pixel", "region", "regions_table", "regions", "ft_labels_path"):
            st.session_state.pop(k, None)


def scan_ref() -> ScanRef | None:
    """The active scan; at first the file in ``XRF_DEFAULT_SCAN``, else the demo scan if present."""
    ref = st.session_state.get("scan_ref")
    if ref is None:
        start = os.environ.get("XRF_DEFAULT_SCAN")
        if start and Path(start).is_file():
            ref = make_ref(start)
        elif DEMO_SCAN.is_file():
            ref = make_ref(DEMO_SCAN, label="demo mock-up")
        st.session_state["scan_ref"] = ref
    return ref


@st.cache_resource(max_entries=4, show_spinner="Opening scan…")
def _open_scan(ref: ScanRef):
    from xrfcore.io import open_scan

    cal = EnergyCalibration(*ref.calibration) if ref.calibration else None
    return open_scan(ref.path, calibration=cal)


def load_scan(ref: ScanRef):
    """The cached :class:`~xrfcore.scan.Scan` of ``ref`` (raises XRFError)."""
    return _open_scan(ref)


def get_scan(*, stop: bool = True):
    """The active Scan, or show what to do and stop the page (``stop=False``: return None)."""
    ref = scan_ref()
    if ref is None:
        st.info("No scan is open. Open one on the **Scan** page (upload a file or pick one from the data folder).")
        return _maybe_stop(stop)
    if not Path(ref.path).is_file():
        st.error(f"The scan file {ref.label} is gone from the server. Open another scan on the **Scan** page.")
        return _maybe_stop(stop)
    try:
        return load_scan(ref)
    except XRFError as exc:
        st.error(f"Cannot open {ref.label}: {public_message(exc)}")
        return _maybe_stop(stop)


def public_message(exc: BaseException | str) -> str:
    """An error message without the server's upload folders (the user sees their own file names)."""
    from xrfcore.io.uploads import public_message as strip

    uploads = user_subdir("uploads")
    return strip(str(exc), [*sorted(uploads.iterdir(), reverse=True), uploads])


def _maybe_stop(stop: bool):
    if stop:
        st.stop()
    return None


@contextlib.contextmanager
def show_errors(what: str = "", *, stop: bool = True) -> Iterator[None]:
    """Show an :class:`XRFError` as ``st.error`` (its message says what to do), then stop the page."""
    try:
        yield
    except XRFError as exc:
        st.error(f"{what}: {exc}" if what else str(exc))
        if stop:
            st.stop()


# -- derived arrays (small; keyed by the ScanRef) ----------------------------------------------
@st.cache_data(max_entries=16, show_spinner="Summing spectra…")
def sum_spectrum(ref: ScanRef) -> np.ndarray:
    return load_scan(ref).sum_spectrum()


@st.cache_data(max_entries=16, show_spinner=False)
def mean_spectrum(ref: ScanRef) -> np.ndarray:
    return load_scan(ref).mean_spectrum()


@st.cache_data(max_entries=16, show_spinner="Computing total counts…")
def total_counts_map(ref: ScanRef) -> np.ndarray:
    return load_scan(ref).total_counts_map()


@st.cache_data(max_entries=16, show_spinner="Identifying elements…")
def identified_elements(ref: ScanRef) -> list[str]:
    from xrfcore.elements import identify_elements

    scan = load_scan(ref)
    return list(identify_elements(scan, tube_kv=tube_kv(scan)))


@st.cache_data(max_entries=16, show_spinner="Checking for lines the library cannot explain…")
def unexplained_in_scan(ref: ScanRef) -> list[tuple[str, float]]:
    """(element, share of pixels) of identified elements no pigment of the library explains."""
    from xrfcore.elements.unexplained import scan_unexplained

    return list(scan_unexplained(load_scan(ref), library()))


def tube_kv(scan) -> float:
    return float(scan.metadata.tube_kv or 40.0)


@st.cache_data(max_entries=8, show_spinner="Computing element maps…")
def element_maps(ref: ScanRef, elements: tuple[str, ...], method: str = "roi") -> dict[str, np.ndarray]:
    """Element maps ``{element: (H, W)}`` by ROI integration or PyMca fitting."""
    from xrfcore import elements as xel

    scan = load_scan(ref)
    if method == "fit":
        maps = xel.fitted_maps(scan, list(elements), tube_kv=tube_kv(scan))
    else:
        maps = xel.roi_maps(scan, list(elements), tube_kv=tube_kv(scan))
    return {k: np.asarray(v, dtype=np.float32) for k, v in maps.items()}


@st.cache_resource(show_spinner=False)
def library():
    """The pigment library (the user's copy when one was saved, else the shipped one)."""
    from xrfcore.library import load_library

    user = user_dir() / "library.json"
    return load_library(user if user.is_file() else None)


def pigment_elements(cls: str, *, tube_kv: float = 40.0, min_kev: float = 2.8) -> list[str]:
    """Elements of a pigment class the detector sees, by mass (:func:`xrfcore.library.visible_elements`)."""
    from xrfcore.library import visible_elements

    return visible_elements(library(), cls, tube_kv=tube_kv, min_kev=min_kev)


@st.cache_resource(max_entries=8, show_spinner="Estimating the detector resolution…")
def evidence_config(ref: ScanRef, model_key: str, _bundle=None):
    """The scan's element-evidence configuration (its tube voltage and detector resolution), the one the
    pigment maps use, so a pixel in the Inspector gets the probabilities its map shows."""
    from xrfcore.elements.evidence import EvidenceConfig, config_for_scan
    from xrfcore.model.evidence_model import spec_of

    spec = spec_of(_bundle) if _bundle is not None else None
    return config_for_scan(load_scan(ref), spec.evidence if spec is not None else EvidenceConfig())


@st.cache_data(max_entries=64, show_spinner=False)
def pixel_evidence(ref: ScanRef, row: int, col: int, model_key: str, _bundle=None):
    """:func:`xrfcore.views.pixel_evidence` of one pixel (cached per scan, pixel and model)."""
    from xrfcore.views import pixel_evidence as evidence

    scan = load_scan(ref)
    return evidence(scan.spectrum(int(row), int(col)), scan.calibration, library=library(), bundle=_bundle,
                    tube_kv=tube_kv(scan), config=evidence_config(ref, model_key, _bundle=_bundle))


# -- model ------------------------------------------------------------------------------------
def _default_model_file() -> Path:
    return user_dir() / "active_model.txt"


def default_model_choice() -> Path:
    """The model a new session starts with: the server default (saved in the user folder), else the shipped one.

    Uses :mod:`xrfcore.active_model` where the installed xrfcore has it; until then the choice
    is the path in ``<user dir>/active_model.txt``.
    """
    try:
        from xrfcore.active_model import server_default_model
    except ImportError:
        server_default_model = None
    if server_default_model is not None:
        return Path(server_default_model())
    if _default_model_file().is_file():
        text = _default_model_file().read_text().strip()
        if text and Path(text).is_file():
            return Path(text)
    try:
        from xrfcore.model import default_model_path

        return Path(default_model_path())
    except ImportError:
        return REPO_ROOT / "models" / "default.keras"


def active_model_path() -> Path:
    """The model the pages use: this session's choice (kept over a reload), else the default."""
    chosen = st.session_state.get("model_path")
    if chosen and Path(chosen).is_file():
        return Path(chosen)
    return default_model_choice()


def set_active_model(path: str | Path) -> None:
    """Use ``path`` in this browser session only (other sessions and new ones keep theirs)."""
    st.session_state["model_path"] = str(Path(path).resolve())


def set_default_model(path: str | Path) -> None:
    """Make ``path`` the model every new session starts with (an explicit, server-wide action)."""
    try:
        from xrfcore.active_model import set_server_default_model
    except ImportError:
        set_server_default_model = None
    if set_server_default_model is not None:
        set_server_default_model(path)
        return
    from xrfcore.atomic import atomic_write_text

    atomic_write_text(_default_model_file(), str(Path(path).resolve()) + "\n")


@st.cache_resource(max_entries=3, show_spinner="Loading model…")
def _load_model(path: str, mtime_ns: int):
    from xrfcore.model import load_model

    return load_model(path)


NO_MODEL_HELP = (
    "No pigment model is available yet at `{path}`. Train one on the **Library & training** page "
    "(simulate a dataset, then train), or from a terminal: `python -m xrfcore simulate --out sim.h5 "
    "--n 20000 --seed 0` then `python -m xrfcore train --data sim.h5 --out models/default.keras`; "
    "or choose another model file in the sidebar."
)


def get_bundle(*, stop: bool = True):
    """The active :class:`ModelBundle`, or explain how to get one (no traceback) and stop."""
    path = active_model_path()
    if path is None or not path.is_file():
        st.warning(NO_MODEL_HELP.format(path=path))
        return _maybe_stop(stop)
    try:
        return _load_model(str(path), path.stat().st_mtime_ns)
    except XRFError as exc:
        st.error(f"Cannot load the model {path.name}: {exc}")
        return _maybe_stop(stop)


@st.cache_resource(show_spinner=False)
def _cube_store() -> dict:
    return {}


def cube_key(ref: ScanRef, bundle) -> tuple:
    return (ref, str(bundle.path), bundle.sha256)


def probability_maps(ref: ScanRef, bundle, *, batch_size: int = 256) -> dict:
    """Every map of the active scan (:func:`xrfcore.maps.predict_maps`): ``any`` (H, W, K), for evidence
    models ``groups``/``surface``/``hidden``, ``unexplained`` + ``unexplained_elements``, ``covered_share``.
    Computed once per scan + model (+ the short-range choice) with a progress bar."""
    allow_short = bool(st.session_state.get("allow_short_range", False))
    store = _cube_store()
    key = (*cube_key(ref, bundle), allow_short)
    if key in store:
        return store[key]
    from xrfcore.maps import predict_maps

    bar = st.progress(0.0, text="Predicting pigment probabilities…")

    def progress(done: Any, total: Any = None) -> None:
        frac = float(done) / float(total) if total else float(done)
        bar.progress(min(max(frac, 0.0), 1.0), text=f"Predicting pigment probabilities… {frac:.0%}")

    maps = predict_maps(bundle, load_scan(ref), batch_size=batch_size, progress=progress,
                        allow_short_range=allow_short)
    bar.empty()
    while len(store) >= 2:
        store.pop(next(iter(store)))
    store[key] = maps
    return maps


def probability_cube(ref: ScanRef, bundle, *, batch_size: int = 256) -> np.ndarray:
    """``(H, W, K)`` any-layer probabilities of the active scan (see :func:`probability_maps`)."""
    return probability_maps(ref, bundle, batch_size=batch_size)["any"]


# -- uploads ------------------------------------------------------------------------------------
def stage_scan_uploads(uploaded: list) -> Any:
    """Copy uploaded scan files to the user's upload folder; pair ``.rpl`` + ``.raw`` (also in a zip).

    Returns :class:`xrfcore.io.uploads.StagedUploads` (scans found, problems in the user's words).
    """
    from xrfcore.io.uploads import stage_uploads

    files = []
    for up in uploaded:
        up.seek(0)
        files.append((up.name, up))
    return stage_uploads(files, user_subdir("uploads"))


def save_upload(uploaded) -> Path:
    """Copy a Streamlit upload to the user's upload folder (chunked) and return the path.

    The file is named by the hash of its content so the same upload is stored once.
    """
    h = hashlib.sha256()
    uploaded.seek(0)
    for chunk in iter(lambda: uploaded.read(8 << 20), b""):
        h.update(chunk)
    name = Path(uploaded.name).name
    dest = user_subdir("uploads") / f"{h.hexdigest()[:12]}_{name}"
    if not dest.exists():
        uploaded.seek(0)
        tmp = dest.with_name(dest.name + ".part")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(uploaded, out, 8 << 20)
        tmp.replace(dest)
    return dest
