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
    """Folder for uploads, label files, user models and the user's library (``XRF_USER_DIR``)."""
    path = Path(os.environ.get("XRF_USER_DIR") or REPO_ROOT / "user_data")
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
    """Make ``path`` the active scan (clears the selected pixel and region)."""
    st.session_state["scan_ref"] = make_ref(path, label=label, calibration=calibration)
    for k in ("pixel", "region", "regions_table"):
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
        st.error(f"The scan file {ref.path} is gone. Open another scan on the **Scan** page.")
        return _maybe_stop(stop)
    try:
        return load_scan(ref)
    except XRFError as exc:
        st.error(f"Cannot open {ref.label}: {exc}")
        return _maybe_stop(stop)


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
    """Elements of a pigment class that emit a line the detector sees (>= ``min_kev``), by mass.

    A class with stand-ins (emerald green: verdigris + sodium arsenite) gets the elements of all.
    """
    from xrfcore.elements import emission_lines
    from xrfcore.errors import LibraryError

    lib = library()
    members = list(lib.pigments_of_class(cls))
    if not members:
        try:
            members = [lib.get(cls)]
        except LibraryError:
            return []
    fractions: dict[str, float] = {}
    for p in members:
        for el, w in p.elements().items():
            fractions[el] = max(fractions.get(el, 0.0), w)
    visible = []
    for el in fractions:
        try:
            lines = emission_lines(el, tube_kv=tube_kv)
        except XRFError:  # lighter than Na: no line a detector in air sees
            continue
        if any(ln.energy_kev >= min_kev for ln in lines):
            visible.append(el)
    return sorted(visible, key=lambda el: -fractions[el])


# -- model ------------------------------------------------------------------------------------
def _active_model_file() -> Path:
    return user_dir() / "active_model.txt"


def active_model_path() -> Path | None:
    """The model the pages use: this session's choice, else the saved choice, else the default."""
    chosen = st.session_state.get("model_path")
    if chosen is None and _active_model_file().is_file():
        text = _active_model_file().read_text().strip()
        chosen = text if text and Path(text).is_file() else None
    if chosen is None:
        try:
            from xrfcore.model import default_model_path

            chosen = str(default_model_path())
        except ImportError:
            chosen = str(REPO_ROOT / "models" / "default.keras")
    return Path(chosen)


def set_active_model(path: str | Path) -> None:
    """Use ``path`` in this session and remember it for the next start of the app."""
    st.session_state["model_path"] = str(Path(path).resolve())
    _active_model_file().write_text(str(Path(path).resolve()) + "\n")


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


def cached_cube(ref: ScanRef, bundle) -> np.ndarray | None:
    return _cube_store().get(cube_key(ref, bundle))


def probability_cube(ref: ScanRef, bundle, *, batch_size: int = 256) -> np.ndarray:
    """``(H, W, K)`` probabilities of the active scan; computed once per scan+model with progress."""
    store = _cube_store()
    key = cube_key(ref, bundle)
    if key in store:
        return store[key]
    from xrfcore.maps import predict_cube

    bar = st.progress(0.0, text="Predicting pigment probabilities…")

    def progress(done: Any, total: Any = None) -> None:
        frac = float(done) / float(total) if total else float(done)
        bar.progress(min(max(frac, 0.0), 1.0), text=f"Predicting pigment probabilities… {frac:.0%}")

    cube = predict_cube(bundle, load_scan(ref), batch_size=batch_size, progress=progress)
    bar.empty()
    while len(store) >= 2:
        store.pop(next(iter(store)))
    store[key] = np.asarray(cube, dtype=np.float32)
    return store[key]


# -- uploads ------------------------------------------------------------------------------------
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
