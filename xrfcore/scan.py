"""The :class:`Scan`: counts (rows, cols, channels), an energy calibration and metadata.

A scan's counts may be an in-memory ``numpy`` array or a lazy array (anything with
``shape``, ``dtype`` and a ``__getitem__`` that returns numpy, such as the HDF5 and raw
readers' arrays). Reading goes through :meth:`Scan.read_rows`, which validates each block
(no NaN, no negative counts), so a cube larger than memory is processed in row chunks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np

from xrfcore.errors import CalibrationError, ScanReadError

__all__ = ["EnergyCalibration", "ScanMetadata", "Scan", "DEFAULT_CHUNK_BYTES"]

#: Target size of one row chunk read from a lazy cube (bytes, as float32).
DEFAULT_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class EnergyCalibration:
    """Channel -> energy: ``E(ch) = offset_kev + gain_kev * ch + quadratic_kev * ch**2`` (keV).

    ``ch`` is the zero-based channel index; energies are channel centres.

    Raises
    ------
    CalibrationError
        If ``gain_kev <= 0`` or any term is not finite.
    """

    offset_kev: float
    gain_kev: float
    quadratic_kev: float = 0.0

    def __post_init__(self) -> None:
        for name in ("offset_kev", "gain_kev", "quadratic_kev"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                raise CalibrationError(f"energy calibration {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.gain_kev <= 0:
            raise CalibrationError(
                f"energy calibration gain must be > 0 keV/channel, got {self.gain_kev!r}; "
                "pass the detector gain in keV per channel (e.g. 0.010 for 10 eV/channel)"
            )

    def energies(self, n_channels: int) -> np.ndarray:
        """Energy (keV) of each channel centre, shape ``(n_channels,)`` float64.

        Raises CalibrationError if a quadratic term makes the axis non-increasing.
        """
        ch = np.arange(n_channels, dtype=np.float64)
        e = self.offset_kev + self.gain_kev * ch + self.quadratic_kev * ch * ch
        if n_channels > 1 and np.any(np.diff(e) <= 0):
            raise CalibrationError(
                f"energy axis is not increasing over {n_channels} channels with {self}; "
                "check the sign and size of the quadratic term"
            )
        return e

    def channel(self, energy_kev: float | np.ndarray) -> float | np.ndarray:
        """Fractional channel index of ``energy_kev`` (inverse of :meth:`energies`)."""
        e = np.asarray(energy_kev, dtype=np.float64)
        if self.quadratic_kev == 0.0:
            ch = (e - self.offset_kev) / self.gain_kev
        else:
            a, b, c = self.quadratic_kev, self.gain_kev, self.offset_kev - e
            ch = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
        return float(ch) if ch.ndim == 0 else ch

    def to_dict(self) -> dict[str, float]:
        return {"offset_keV": self.offset_kev, "gain_keV": self.gain_kev, "quadratic_keV": self.quadratic_kev}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EnergyCalibration":
        return cls(float(d["offset_keV"]), float(d["gain_keV"]), float(d.get("quadratic_keV", 0.0)))


@dataclass
class ScanMetadata:
    """What is known about where a scan came from. ``None`` means unknown."""

    source: str = ""
    format: str = ""
    live_time_s: float | None = None
    real_time_s: float | None = None
    tube_kv: float | None = None
    tube_current_ua: float | None = None
    pixel_size_um: float | None = None
    calibration_from_file: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scan:
    """An MA-XRF scan: counts ``(n_rows, n_cols, n_channels)``, calibration, metadata.

    Parameters
    ----------
    counts : (n_rows, n_cols, n_channels) array-like
        numpy array or lazy array (``shape``, ``dtype``, ``__getitem__`` -> numpy).
        Single spectra are ``(1, 1, n_channels)``.
    calibration : EnergyCalibration
    metadata : ScanMetadata, optional

    Raises
    ------
    ScanReadError
        If ``counts`` is not 3-D, has an empty axis or a non-numeric dtype.
    """

    def __init__(self, counts: Any, calibration: EnergyCalibration, metadata: ScanMetadata | None = None):
        shape = tuple(int(s) for s in getattr(counts, "shape", ()))
        meta = metadata or ScanMetadata()
        where = f" in {meta.source}" if meta.source else ""
        if len(shape) != 3:
            raise ScanReadError(
                f"expected a 3-D cube (rows, cols, channels){where}, got shape {shape}; "
                "a single spectrum should be reshaped to (1, 1, n_channels)"
            )
        if min(shape) < 1:
            raise ScanReadError(f"scan{where} has an empty axis: shape {shape}")
        dtype = np.dtype(counts.dtype)
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
            raise ScanReadError(f"scan counts{where} must be numeric, got dtype {dtype}")
        if not isinstance(calibration, EnergyCalibration):
            raise TypeError(f"calibration must be an EnergyCalibration, got {type(calibration).__name__}")
        try:
            calibration.energies(shape[2])  # raises if the axis is not increasing
        except CalibrationError as exc:
            raise CalibrationError(f"{meta.source}: {exc}" if meta.source else str(exc)) from None
        self.counts = counts
        self.calibration = calibration
        self.metadata = meta

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_array(
        cls,
        counts: np.ndarray,
        calibration: EnergyCalibration,
        *,
        source: str = "array",
        format: str = "array",
    ) -> "Scan":
        """Wrap an in-memory array; 1-D and 2-D inputs become ``(1, 1, C)`` / ``(1, N, C)``."""
        arr = np.asarray(counts)
        if arr.ndim == 1:
            arr = arr[None, None, :]
        elif arr.ndim == 2:
            arr = arr[None, :, :]
        return cls(arr, calibration, ScanMetadata(source=source, format=format))

    # -- shape ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.counts.shape)  # type: ignore[return-value]

    @property
    def n_rows(self) -> int:
        return self.shape[0]

    @property
    def n_cols(self) -> int:
        return self.shape[1]

    @property
    def n_channels(self) -> int:
        return self.shape[2]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.counts.dtype)

    @property
    def energy_kev(self) -> np.ndarray:
        """Energy of each channel centre (keV), shape ``(n_channels,)``."""
        return self.calibration.energies(self.n_channels)

    def __repr__(self) -> str:
        c = self.calibration
        return (
            f"Scan(shape={self.shape}, dtype={self.dtype}, format={self.metadata.format!r}, "
            f"offset_keV={c.offset_kev:.4f}, gain_keV={c.gain_kev:.6f}, source={self.metadata.source!r})"
        )

    # -- reading ----------------------------------------------------------------
    def default_chunk_rows(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
        """Rows per chunk so one float32 chunk is about ``chunk_bytes``."""
        row_bytes = self.n_cols * self.n_channels * 4
        return max(1, min(self.n_rows, chunk_bytes // max(row_bytes, 1)))

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Counts of rows ``start:stop`` as a numpy array ``(stop-start, n_cols, n_channels)``.

        Raises ScanReadError if the block holds NaN, inf or negative counts.
        """
        if not (0 <= start < stop <= self.n_rows):
            raise IndexError(f"rows {start}:{stop} outside scan with {self.n_rows} rows")
        block = np.asarray(self.counts[start:stop])
        _check_counts(block, self.metadata.source, f"rows {start}:{stop}")
        return block

    def spectrum(self, row: int, col: int) -> np.ndarray:
        """One pixel's spectrum ``(n_channels,)``; reads only that pixel where the file allows."""
        if not (0 <= row < self.n_rows and 0 <= col < self.n_cols):
            raise IndexError(f"pixel (row={row}, col={col}) outside scan of {self.n_rows} x {self.n_cols}")
        spec = np.asarray(self.counts[row : row + 1, col : col + 1])[0, 0]
        _check_counts(spec, self.metadata.source, f"pixel ({row}, {col})")
        return spec

    def iter_row_chunks(self, rows_per_chunk: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, block)`` over the scan in row chunks."""
        step = rows_per_chunk or self.default_chunk_rows()
        for start in range(0, self.n_rows, step):
            stop = min(self.n_rows, start + step)
            yield start, stop, self.read_rows(start, stop)

    def iter_blocks(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
        """Yield ``(row0, row1, col0, col1, block)`` of about ``chunk_bytes`` (as float32) each.

        Whole rows when a row fits, else pieces of one row, so memory stays bounded even when a
        single row is gigabytes. Blocks are validated like :meth:`read_rows`.
        """
        row_bytes = self.n_cols * self.n_channels * 4
        if row_bytes <= chunk_bytes:
            for start, stop, block in self.iter_row_chunks(self.default_chunk_rows(chunk_bytes)):
                yield start, stop, 0, self.n_cols, block
            return
        cols = max(1, chunk_bytes // max(self.n_channels * 4, 1))
        for r in range(self.n_rows):
            for c0 in range(0, self.n_cols, cols):
                c1 = min(self.n_cols, c0 + cols)
                block = np.asarray(self.counts[r : r + 1, c0:c1])
                _check_counts(block, self.metadata.source, f"row {r}, cols {c0}:{c1}")
                yield r, r + 1, c0, c1, block

    def sum_spectrum(self) -> np.ndarray:
        """Sum over all pixels, shape ``(n_channels,)`` float64."""
        total = np.zeros(self.n_channels, dtype=np.float64)
        for *_, block in self.iter_blocks():
            total += block.sum(axis=(0, 1), dtype=np.float64)
        return total

    def mean_spectrum(self) -> np.ndarray:
        """Mean spectrum over all pixels, shape ``(n_channels,)`` float64."""
        return self.sum_spectrum() / (self.n_rows * self.n_cols)

    def max_pixel_spectrum(self) -> np.ndarray:
        """Channel-wise maximum over all pixels ("max-pixel spectrum"), float64."""
        out = np.zeros(self.n_channels, dtype=np.float64)
        for *_, block in self.iter_blocks():
            np.maximum(out, block.max(axis=(0, 1)), out=out)
        return out

    def total_counts_map(self) -> np.ndarray:
        """Total counts per pixel, shape ``(n_rows, n_cols)`` float64."""
        out = np.empty((self.n_rows, self.n_cols), dtype=np.float64)
        for r0, r1, c0, c1, block in self.iter_blocks():
            out[r0:r1, c0:c1] = block.sum(axis=-1, dtype=np.float64)
        return out


#: Largest count value accepted in one channel (float counts beyond it are not photon counts).
MAX_COUNT = 2.0**53


def _check_counts(block: np.ndarray, source: str, where: str) -> None:
    """Raise ScanReadError for NaN/inf, implausibly large or negative counts in ``block``."""
    if np.issubdtype(block.dtype, np.floating):
        if not np.all(np.isfinite(block)):
            n_bad = int(np.count_nonzero(~np.isfinite(block)))
            raise ScanReadError(
                f"{source or 'scan'}: {n_bad} NaN/inf count values in {where}; "
                "counts must be finite: re-export the scan or replace missing pixels with 0"
            )
        if block.size and float(block.max()) > MAX_COUNT:
            raise ScanReadError(
                f"{source or 'scan'}: count values up to {float(block.max()):.3g} in {where}, beyond any photon "
                f"count (limit {MAX_COUNT:.3g}); the file is damaged or does not hold counts"
            )
    if np.issubdtype(block.dtype, np.signedinteger) or np.issubdtype(block.dtype, np.floating):
        if block.size and block.min() < 0:
            raise ScanReadError(
                f"{source or 'scan'}: negative counts (min {block.min()}) in {where}; photon counts "
                "cannot be negative: was a background already subtracted? Load the raw counts instead"
            )
