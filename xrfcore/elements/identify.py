"""Automatic element identification: peaks of the sum and max-pixel spectra matched to lines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrfcore.elements.lines import ELEMENT_RANGE, MAIN_GROUP, SECOND_GROUP, _xraylib, line_groups
from xrfcore.elements.roi import detector_fwhm_kev
from xrfcore.scan import EnergyCalibration, Scan

__all__ = ["Peak", "find_peaks", "identify_elements"]


@dataclass(frozen=True)
class Peak:
    """A detected peak: centre (keV), net counts in +-FWHM/2 and significance (sigma)."""

    energy_kev: float
    net_counts: float
    significance: float


def find_peaks(
    spectrum: np.ndarray,
    calibration: EnergyCalibration,
    *,
    min_significance: float = 5.0,
    e_min_kev: float = 1.0,
) -> list[Peak]:
    """Peaks of one spectrum found with a zero-area (top-hat) filter.

    At each channel the filter takes the counts in a window one detector FWHM wide minus half
    the counts of each of the two equally wide windows beside it; a flat or linear background
    gives zero. Its significance is that response over its Poisson standard deviation
    ``sqrt(centre + (left + right) / 4)``. Peaks are local maxima of the significance above
    ``min_significance``.

    Returns
    -------
    list of Peak, most significant first; ``net_counts`` is the filter response.
    """
    e, response, sig = _tophat(spectrum, calibration, e_min_kev)
    n = e.size
    is_max = np.zeros(n, dtype=bool)
    is_max[1:-1] = (sig[1:-1] >= sig[:-2]) & (sig[1:-1] > sig[2:]) & (sig[1:-1] >= min_significance)
    peaks = [Peak(float(e[k]), float(response[k]), float(sig[k])) for k in np.flatnonzero(is_max)]
    return sorted(peaks, key=lambda p: -p.significance)


def _tophat(spectrum: np.ndarray, calibration: EnergyCalibration, e_min_kev: float):
    """Energies (keV), top-hat filter response and its significance per channel."""
    y = np.maximum(np.asarray(spectrum, dtype=np.float64), 0.0)
    n = y.size
    e = calibration.energies(n)
    fwhm_ch = detector_fwhm_kev(np.maximum(e, 0.1)) / calibration.gain_kev
    h = np.maximum(1, np.round(fwhm_ch / 2)).astype(np.int64)
    i = np.arange(n)
    cum = np.concatenate([[0.0], np.cumsum(y)])

    def window(a, b):
        a = np.clip(a, 0, n)
        b = np.clip(b, 0, n)
        return cum[b] - cum[a]

    centre = window(i - h, i + h + 1)
    left = window(i - 3 * h - 1, i - h)
    right = window(i + h + 1, i + 3 * h + 2)
    valid = (i - 3 * h - 1 >= 0) & (i + 3 * h + 2 <= n) & (e >= e_min_kev)
    response = centre - 0.5 * (left + right)
    sig = np.where(valid, response / np.sqrt(np.maximum(centre + 0.25 * (left + right), 1.0)), 0.0)
    return e, response, sig


def _near(peaks: list[Peak], energy_kev: float, tol_kev: float) -> Peak | None:
    best = None
    for p in peaks:
        if abs(p.energy_kev - energy_kev) <= tol_kev and (best is None or p.significance > best.significance):
            best = p
    return best


def _tolerance(energy_kev: float, gain_kev: float) -> float:
    return 0.35 * float(detector_fwhm_kev(energy_kev)) + gain_kev


def _signal_at(curve: tuple[np.ndarray, np.ndarray], energy_kev: float, tol_kev: float) -> float:
    """Largest filter significance within ``tol_kev`` of ``energy_kev``."""
    e, sig = curve
    sel = np.abs(e - energy_kev) <= tol_kev
    return float(sig[sel].max()) if sel.any() else 0.0


#: Elements found in pigments, grounds, binders' fillers and common impurities of paintings; the
#: default candidate list of :func:`identify_elements` (pass ``candidates=None`` for every element).
PAINTING_ELEMENTS: tuple[str, ...] = (
    "S", "Cl", "Ar", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "As", "Se", "Br",
    "Rb", "Sr", "Zr", "Mo", "Ag", "Cd", "Sn", "Sb", "I", "Ba", "W", "Pt", "Au", "Hg", "Pb", "Bi", "U",
)

#: Scattering angle (deg) assumed for Compton peaks of the tube's lines (45/45 geometry).
SCATTER_ANGLE_DEG = 90.0


def _compton_kev(energy_kev: float, angle_deg: float = SCATTER_ANGLE_DEG) -> float:
    """Energy (keV) of a photon of ``energy_kev`` after Compton scattering by ``angle_deg``."""
    return energy_kev / (1.0 + energy_kev / 510.999 * (1.0 - np.cos(np.radians(angle_deg))))


def _candidate_symbols(candidates) -> list[str]:
    xrl = _xraylib()
    if candidates is None:
        return [xrl.AtomicNumberToSymbol(z) for z in range(ELEMENT_RANGE[0], ELEMENT_RANGE[1] + 1)]
    return [str(c) for c in candidates]


def _match(peaks: list[Peak], curve, e_lo: float, e_hi: float, gain: float, tube_kv: float, min_sig: float,
           symbols: list[str]):
    """Candidate (element, main peak, confirmed-by-second-line) triples, strongest first."""
    found = []
    for symbol in symbols:
        groups = {g.group: g for g in line_groups(symbol, tube_kv=tube_kv)}
        for fam in ("K", "L", "M"):
            main = groups.get(MAIN_GROUP[fam])
            if main is None or not (e_lo <= main.energy_kev <= e_hi):
                continue
            p = _near(peaks, main.energy_kev, _tolerance(main.energy_kev, gain))
            if p is None:
                continue
            second = groups.get(SECOND_GROUP[fam])
            expected = 0.0
            if second is not None and e_lo <= second.energy_kev <= e_hi:
                expected = p.significance * second.relative_rate / max(main.relative_rate, 1e-9) ** 0.5
            confirmed = False
            if expected > 0:
                tol = _tolerance(second.energy_kev, gain)
                q = _near(peaks, second.energy_kev, tol)
                confirmed = q is not None and q is not p  # a separate peak, not the main one again
                if expected >= 2 * min_sig and _signal_at(curve, second.energy_kev, tol) < 0.1 * expected:
                    continue  # the companion line should be clearly visible and there is nothing there
            found.append((symbol, fam, p, bool(confirmed), second.energy_kev if second is not None else None))
            break
    return sorted(found, key=lambda t: -t[2].significance)


def identify_elements(
    scan_or_spectrum: Scan | np.ndarray,
    calibration: EnergyCalibration | None = None,
    *,
    tube_kv: float = 40.0,
    min_significance: float = 6.0,
    e_min_kev: float = 1.0,
    anode: str | None = "Rh",
    candidates: tuple[str, ...] | None = PAINTING_ELEMENTS,
) -> list[str]:
    """Elements present in a scan (or one spectrum), as a default element list.

    Peaks are searched in the sum spectrum and in the max-pixel spectrum (which shows elements
    present in a few pixels only). An element counts if its main line group (Ka, La or Ma) sits
    on a peak and, where its companion group (Kb, Lb, Mb) should be clearly visible, that one
    shows too. Elements whose companion is seen are accepted first, strongest first; a later
    candidate whose main line is already explained by an accepted element (its lines, Si escape
    peaks of its main lines) or by an escape/sum peak of much stronger peaks
    is kept only if its companion line is seen and not explained either (Pb La on As Ka: As is
    kept only with As Kb).

    Parameters
    ----------
    scan_or_spectrum : Scan or (n_channels,) / (..., n_channels) ndarray
        A scan, or spectra (summed over leading axes; max-pixel from the leading axes).
    calibration : EnergyCalibration, optional
        Needed for arrays; taken from the scan otherwise.
    tube_kv : float
        Tube voltage (kV): only excitable lines are considered.
    min_significance : float
        Peak significance threshold (sigma above the SNIP background).
    e_min_kev : float
        Peaks below this energy are ignored.
    anode : str or None
        X-ray tube anode. Its lines reach the detector by Rayleigh and Compton scattering (at
        ``SCATTER_ANGLE_DEG``): those peaks count as explained and the anode is not reported.
    candidates : sequence of str or None
        Elements to consider (default :data:`PAINTING_ELEMENTS`); ``None`` considers every
        element, which lets coincidences such as Re L on Zn K + Hg L through.

    Returns
    -------
    list of str
        Element symbols ordered by their strongest peak's significance.
    """
    if isinstance(scan_or_spectrum, Scan):
        calibration = calibration or scan_or_spectrum.calibration
        spectra = [scan_or_spectrum.sum_spectrum()]
        if scan_or_spectrum.n_rows * scan_or_spectrum.n_cols > 1:
            spectra.append(scan_or_spectrum.max_pixel_spectrum())
    else:
        if calibration is None:
            raise ValueError("identify_elements needs the calibration of an array; pass calibration=")
        arr = np.asarray(scan_or_spectrum, dtype=np.float64)
        flat = arr.reshape(-1, arr.shape[-1])
        spectra = [flat.sum(axis=0)] + ([flat.max(axis=0)] if flat.shape[0] > 1 else [])
    n = spectra[0].size
    e = calibration.energies(n)
    e_lo, e_hi = max(float(e[0]), e_min_kev), min(float(e[-1]), float(tube_kv))
    best: dict[str, float] = {}
    # shared: elements found in the sum spectrum explain max-pixel peaks; the anode explains scatter
    accepted: list[str] = [anode] if anode else []
    symbols = [s for s in _candidate_symbols(candidates) if s != anode]
    scatter = _scatter_lines_kev(anode, tube_kv) if anode else []
    for spectrum in spectra:
        peaks = find_peaks(spectrum, calibration, min_significance=min_significance, e_min_kev=e_lo)
        peaks = [p for p in peaks
                 if not any(abs(p.energy_kev - x) <= 2 * _tolerance(x, calibration.gain_kev) for x in scatter)]
        e_axis, _, sig = _tophat(spectrum, calibration, e_lo)
        matches = _match(peaks, (e_axis, sig), e_lo, e_hi, calibration.gain_kev, tube_kv, min_significance,
                         symbols)
        _accept(matches, peaks, accepted, best, tube_kv, calibration.gain_kev)
    return [s for s in sorted(best, key=lambda s: -best[s]) if s in accepted and s != anode]


def _scatter_lines_kev(anode: str, tube_kv: float) -> list[float]:
    """Rayleigh (unshifted) and Compton-shifted energies (keV) of the anode's excitable lines."""
    lines = [g.energy_kev for g in line_groups(anode, tube_kv=tube_kv) if g.relative_rate >= 0.05]
    return lines + [_compton_kev(e) for e in lines]


def _accept(matches, peaks, accepted: list[str], best: dict[str, float], tube_kv: float, gain: float) -> None:
    """Add candidates to ``accepted`` (in place): elements whose companion line is seen first,
    strongest first; then drop unconfirmed ones that later elements explain."""
    unconfirmed = []
    for symbol, _, peak, confirmed, second_kev in sorted(matches, key=lambda m: (not m[3], -m[2].significance)):
        if symbol in accepted:
            best[symbol] = max(best.get(symbol, 0.0), peak.significance)
            continue
        if _explained(peak.energy_kev, accepted, tube_kv, gain) or _artefact(peak, peaks, gain):
            if not confirmed or _explained(second_kev, accepted, tube_kv, gain):
                continue  # every line it would add is already explained by another element
        accepted.append(symbol)
        best[symbol] = max(best.get(symbol, 0.0), peak.significance)
        if not confirmed:
            unconfirmed.append((peak.significance, symbol, peak.energy_kev))
    # an unconfirmed element accepted before the element that explains it (Na Ka on Zn La)
    for _, symbol, energy in sorted(unconfirmed):
        others = [a for a in accepted if a != symbol]
        if _explained(energy, others, tube_kv, gain):
            accepted.remove(symbol)
    return sorted(best, key=lambda s: -best[s])


def _artefact(peak: Peak, peaks: list[Peak], gain: float, *, ratio: float = 3.0) -> bool:
    """True if ``peak`` sits where a Si escape peak of a much stronger peak, or the sum (pile-up)
    peak of two much stronger peaks, would be (much stronger: ``ratio`` times the significance)."""
    strong = [p.energy_kev for p in peaks if p.significance >= ratio * peak.significance]
    tol = _tolerance(peak.energy_kev, gain)
    candidates = [x - SI_KA_KEV for x in strong] + [a + b for i, a in enumerate(strong) for b in strong[i:]]
    return any(abs(x - peak.energy_kev) <= tol for x in candidates)


#: Si K-alpha energy (keV): a Si detector's escape peaks sit this far below the parent line.
SI_KA_KEV = 1.74


def _explained(energy_kev: float, accepted: list[str], tube_kv: float, gain: float) -> bool:
    """True if a line group of an accepted element, or the Si escape peak of one of its main
    groups (Ka, Kb, La, Lb), lies at ``energy_kev``. Sum peaks are left to :func:`_artefact`."""
    groups = [g for el in accepted for g in line_groups(el, tube_kv=tube_kv)]
    energies = [g.energy_kev for g in groups if g.relative_rate >= 0.01]
    energies += [g.energy_kev - SI_KA_KEV for g in groups if g.group in ("Ka", "Kb", "La", "Lb")]
    tol = _tolerance(energy_kev, gain)
    return any(abs(x - energy_kev) <= tol for x in energies)
