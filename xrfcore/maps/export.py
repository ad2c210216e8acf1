"""Export pigment maps: one PNG per pigment, a multi-page TIFF, an HDF5 file (all atomic).

Probabilities are shown on a fixed 0-100 % scale (never auto-scaled, so maps of different
pigments and scans compare directly).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from xrfcore.atomic import atomic_path

__all__ = ["export_png", "export_tiff", "export_h5"]


def _check(probabilities: np.ndarray, pigments: Sequence[str]) -> np.ndarray:
    p = np.asarray(probabilities)
    if p.ndim != 3 or p.shape[2] != len(pigments):
        raise ValueError(
            f"expected probabilities of shape (n_rows, n_cols, {len(pigments)}) for {len(pigments)} pigments, "
            f"got {p.shape}"
        )
    return p


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "pigment"


def export_png(
    probabilities: np.ndarray,
    pigments: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    pigment_names: Sequence[str] | None = None,
    cmap: str = "viridis",
    dpi: int = 100,
    prefix: str = "",
) -> list[Path]:
    """One PNG per pigment with a 0-100 % colourbar.

    Parameters
    ----------
    probabilities : (n_rows, n_cols, K) array, 0-1
    pigments : K str
        Abbreviations; file names are ``<prefix><abbr>.png``.
    out_dir : path-like
        Created if missing.
    pigment_names : K str, optional
        Titles (full names).
    cmap : str
        Matplotlib colour map.

    Returns
    -------
    list of Path
        The written files, in pigment order.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    p = _check(probabilities, pigments)
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    names = list(pigment_names) if pigment_names is not None else list(pigments)
    h, w = p.shape[:2]
    aspect_w = min(12.0, max(3.0, 5.0 * w / max(h, 1)))
    out = []
    for k, abbr in enumerate(pigments):
        fig = Figure(figsize=(aspect_w + 1.2, 5.0), dpi=dpi)
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(100.0 * p[:, :, k], cmap=cmap, vmin=0.0, vmax=100.0, interpolation="nearest")
        ax.set_title(f"{names[k]} ({abbr})" if names[k] != abbr else abbr)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        cb = fig.colorbar(im, ax=ax)
        cb.set_label("probability (%)")
        path = d / f"{prefix}{_safe_name(abbr)}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        out.append(path)
    return out


def export_tiff(
    probabilities: np.ndarray,
    pigments: Sequence[str],
    path: str | os.PathLike,
    *,
    percent_uint8: bool = False,
) -> Path:
    """Multi-page TIFF, one page per pigment (page name = pigment abbreviation).

    Parameters
    ----------
    probabilities : (n_rows, n_cols, K) array, 0-1
    pigments : K str
    path : path-like
    percent_uint8 : bool
        Store 0-100 % as uint8 instead of float32 probabilities.

    Returns
    -------
    Path
    """
    import tifffile

    p = _check(probabilities, pigments)
    final = Path(path)
    with atomic_path(final) as tmp:
        with tifffile.TiffWriter(tmp) as tif:
            for k, abbr in enumerate(pigments):
                page = p[:, :, k]
                page = np.rint(100.0 * page).clip(0, 100).astype(np.uint8) if percent_uint8 else page.astype(np.float32)
                tif.write(page, photometric="minisblack", metadata=None, description=str(abbr),
                          extratags=[(285, "s", 0, str(abbr), True)])  # 285 = PageName
    return final


def export_h5(
    probabilities: np.ndarray,
    pigments: Sequence[str],
    path: str | os.PathLike,
    *,
    pigment_names: Sequence[str] | None = None,
    total_counts: np.ndarray | None = None,
    attrs: dict | None = None,
) -> Path:
    """Write in-memory maps in the layout of :func:`xrfcore.maps.predict_to_h5`, atomically."""
    import h5py

    p = _check(probabilities, pigments)
    final = Path(path)
    sdt = h5py.string_dtype()
    with atomic_path(final) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("probabilities", data=p.astype(np.float32))
            f.create_dataset("pigments", data=np.array(list(pigments), dtype=object), dtype=sdt)
            names = list(pigment_names) if pigment_names is not None else list(pigments)
            f.create_dataset("pigment_names", data=np.array(names, dtype=object), dtype=sdt)
            if total_counts is not None:
                f.create_dataset("total_counts", data=np.asarray(total_counts, dtype=np.float64))
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            f.attrs["complete"] = True
    return final
