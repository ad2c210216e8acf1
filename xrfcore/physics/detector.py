"""Detector response: efficiency, resolution, escape peaks, pile-up and the peak-shape matrix.

Spectra are rendered as ``intensities @ shapes``: for one energy calibration and detector,
:func:`shape_matrix` precomputes a ``(n_columns, n_channels)`` matrix whose rows are unit-area
responses (Gaussian peak or Gaussian-blurred box, plus its Si escape peak) integrated over
each channel, so a batch of spectra costs one matrix product.

Notes
-----
Neglected: low-energy tailing and incomplete charge collection, the Si K-beta escape, and
energy-dependent pile-up rejection. Pile-up is modelled as the self-convolution of the
spectrum (two photons within the pulse-pair resolution), scaled to a fraction of the counts.
"""

from __future__ import annotations


import numpy as np
from scipy.special import ndtr

from xrfcore.physics.atomic_data import SI_KA_KEV, mass_attenuation
from xrfcore.scan import EnergyCalibration

__all__ = ["fwhm_kev", "sigma_kev", "escape_fraction", "detector_efficiency", "shape_matrix", "apply_pileup",
           "self_convolution"]

_SI_PAIR_KEV = 3.85e-3
_SI_K_EDGE_KEV = 1.8389
_SI_OMEGA_K = 0.047
_SI_JUMP_RATIO = 10.8
_AIR = (("N", 0.7553), ("O", 0.2318), ("Ar", 0.0128))
_AIR_DENSITY = 1.205e-3


def fwhm_kev(energy_kev: np.ndarray, *, noise_ev: float, fano: float) -> np.ndarray:
    """Peak FWHM (keV): ``sqrt(noise**2 + 2.3548**2 * fano * 3.85 eV * E)``."""
    e = np.clip(np.asarray(energy_kev, dtype=np.float64), 0.0, None)
    return np.sqrt((noise_ev * 1e-3) ** 2 + 2.3548**2 * fano * _SI_PAIR_KEV * e)


def sigma_kev(energy_kev: np.ndarray, *, noise_ev: float, fano: float) -> np.ndarray:
    """Gaussian standard deviation (keV) of a peak at ``energy_kev``."""
    return fwhm_kev(energy_kev, noise_ev=noise_ev, fano=fano) / 2.3548


def escape_fraction(energy_kev: np.ndarray, *, si_thickness_mm: float = 0.45) -> np.ndarray:
    """Fraction of detected photons that lose a Si K-alpha photon (escape peak at E - 1.74 keV).

    Reed & Ware (1972) for a semi-infinite Si crystal, front illumination: ``f = 0.5 omega_K
    (1 - 1/r) [1 - (mu_esc / mu_E) ln(1 + mu_E / mu_esc)]``; zero below the Si K edge.
    """
    e = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
    out = np.zeros(e.shape)
    above = e > _SI_K_EDGE_KEV
    if np.any(above):
        mu_e = mass_attenuation(("Si",), tuple(np.round(e[above], 6)))[0]
        mu_esc = mass_attenuation(("Si",), (SI_KA_KEV,))[0, 0]
        x = mu_esc / mu_e
        out[above] = 0.5 * _SI_OMEGA_K * (1.0 - 1.0 / _SI_JUMP_RATIO) * (1.0 - x * np.log1p(1.0 / x))
    return out.reshape(np.shape(energy_kev))


def detector_efficiency(energy_kev: np.ndarray, *, air_path_cm: float, be_window_um: float,
                        si_thickness_mm: float) -> np.ndarray:
    """Probability that a photon leaving the sample is absorbed in the detector crystal.

    ``T_air * T_Be * (1 - exp(-mu_Si rho_Si t_Si))``, with total mass attenuation coefficients.
    """
    e = np.asarray(energy_kev, dtype=np.float64)
    key = tuple(np.round(e.ravel(), 6))
    mu = mass_attenuation(("N", "O", "Ar", "Be", "Si"), key)
    mu_air = sum(w * mu[i] for i, (_, w) in enumerate(_AIR))
    t = np.exp(-mu_air * _AIR_DENSITY * air_path_cm) * np.exp(-mu[3] * 1.848 * be_window_um * 1e-4)
    absorbed = -np.expm1(-mu[4] * 2.33 * si_thickness_mm * 0.1)
    return (t * absorbed).reshape(e.shape)


def _channel_edges(calibration: EnergyCalibration, n_channels: int) -> np.ndarray:
    ch = np.arange(n_channels + 1, dtype=np.float64) - 0.5
    c = calibration
    return c.offset_kev + c.gain_kev * ch + c.quadratic_kev * ch * ch


def _gauss_cdf_int(u: np.ndarray) -> np.ndarray:
    """Antiderivative of the standard normal CDF: ``u Phi(u) + phi(u)``."""
    return u * ndtr(u) + np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)


def _response(edges: np.ndarray, lo: np.ndarray, hi: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Channel-integrated unit-area response of a box [lo, hi] blurred by a Gaussian, (n, C).

    Each column is evaluated only on the channels within 7 sigma of its box (the rest is < 1e-11).
    """
    n_ch = edges.size - 1
    out = np.zeros((lo.shape[0], n_ch))
    a = np.searchsorted(edges, lo - 7 * sigma) - 1
    b = np.searchsorted(edges, hi + 7 * sigma) + 1
    for k in range(lo.shape[0]):
        i0, i1 = max(a[k], 0), min(b[k], n_ch)
        if i1 <= i0:
            continue
        x = edges[i0:i1 + 1]
        s, l, h = sigma[k], lo[k], hi[k]
        if h - l < 1e-3 * s:
            out[k, i0:i1] = np.diff(ndtr((x - l) / s))
        else:
            f = _gauss_cdf_int((x - l) / s) - _gauss_cdf_int((x - h) / s)
            out[k, i0:i1] = np.diff(f) * s / (h - l)
    return out


def shape_matrix(lo_kev: np.ndarray, hi_kev: np.ndarray, calibration: EnergyCalibration, n_channels: int, *,
                 noise_ev: float, fano: float, extra_sigma_kev: np.ndarray | None = None, escape: bool = True,
                 escape_scale: float = 1.0, si_thickness_mm: float = 0.45, dtype=np.float32) -> np.ndarray:
    """Detector response of each column on the channels, shape ``(n_columns, n_channels)``.

    Parameters
    ----------
    lo_kev, hi_kev : (n_columns,) ndarray
        Energy interval of each column (equal for a line; a continuum bin spans its width).
    calibration, n_channels
        The output energy axis.
    noise_ev, fano : float
        Electronic noise (eV FWHM) and Fano factor of the resolution.
    extra_sigma_kev : (n_columns,) ndarray, optional
        Added in quadrature to the detector sigma (Compton Doppler broadening).
    escape : bool
        Add the Si K-alpha escape peak and remove its counts from the main peak.
    escape_scale : float
        Multiplier on the computed escape fraction.
    """
    lo = np.asarray(lo_kev, dtype=np.float64)
    hi = np.asarray(hi_kev, dtype=np.float64)
    edges = _channel_edges(calibration, n_channels)
    centre = 0.5 * (lo + hi)
    extra = np.zeros_like(lo) if extra_sigma_kev is None else np.asarray(extra_sigma_kev, dtype=np.float64)
    sig = np.sqrt(sigma_kev(centre, noise_ev=noise_ev, fano=fano) ** 2 + extra**2)
    out = _response(edges, lo, hi, sig)
    if escape:
        f = escape_scale * escape_fraction(centre, si_thickness_mm=si_thickness_mm)
        has = f > 0
        if np.any(has):
            e_lo, e_hi = lo[has] - SI_KA_KEV, hi[has] - SI_KA_KEV
            s_esc = np.sqrt(sigma_kev(0.5 * (e_lo + e_hi), noise_ev=noise_ev, fano=fano) ** 2 + extra[has] ** 2)
            out[has] = out[has] * (1.0 - f[has, None]) + f[has, None] * _response(edges, e_lo, e_hi, s_esc)
    return out.astype(dtype, copy=False)


def self_convolution(binned: np.ndarray, n_out: int) -> np.ndarray:
    """Self-convolution of each spectrum (last axis), its first ``n_out`` bins, clipped at 0 (FFT rounding).

    Bin ``k`` of the result holds every pair of bins ``(i, j)`` with ``i + j = k``: the spectrum of two
    photons detected as one (pile-up), on bins already coarse enough for it (sum peaks are broad).
    The same arithmetic for the simulator (:func:`apply_pileup`) and the element fit's pile-up template.

    Examples
    --------
    >>> self_convolution(np.array([1.0, 2.0]), 3).round(6).tolist()
    [1.0, 4.0, 4.0]
    """
    from scipy import fft as sfft

    nc = np.shape(binned)[-1]
    nfft = sfft.next_fast_len(2 * nc, real=True)
    spec = sfft.rfft(binned, nfft, axis=-1)
    return np.clip(sfft.irfft(spec * spec, nfft, axis=-1)[..., :n_out], 0.0, None)


def apply_pileup(spectra: np.ndarray, calibration: EnergyCalibration, fraction: float | np.ndarray, *,
                 coarse: int = 4) -> np.ndarray:
    """Add sum peaks: ``(1 - f) s + f (s * s) / sum(s)`` on the same linear energy axis.

    Two photons of channels i and j pile up to ``E_i + E_j``, channel ``i + j + offset/gain``
    (the quadratic term is ignored). ``fraction`` (scalar or per spectrum) is the share of
    counts that end up in pile-up events. The self-convolution is computed on spectra binned by
    ``coarse`` channels (sum peaks are broad; this is ``coarse``-times cheaper) and spread back
    evenly over the fine channels.
    """
    s = np.asarray(spectra, dtype=np.float64)
    f = np.asarray(fraction, dtype=np.float64).reshape(-1, 1) if np.ndim(fraction) else float(fraction)
    if np.all(np.asarray(f) == 0):
        return s.copy()
    n = s.shape[-1]
    r = max(1, int(coarse))
    nc = -(-n // r)
    padded = np.zeros(s.shape[:-1] + (nc * r,), dtype=np.float32)
    padded[..., :n] = s
    c = padded.reshape(s.shape[:-1] + (nc, r)).sum(axis=-1)
    fine = np.repeat(self_convolution(c, 2 * nc) / r, r, axis=-1).astype(np.float64)  # channels r*q ... r*q + r - 1
    # coarse bin q sums fine channels around r*q + (r - 1) / 2; a pair (i, j) lands at fine channel
    # r*(i + j) + (r - 1) + offset/gain, i.e. the repeated block must start at (r - 1) / 2 + offset/gain
    base = int(round((r - 1) / 2 + calibration.offset_kev / calibration.gain_kev))
    pile = np.zeros_like(s)
    k0 = max(0, base)
    m0 = k0 - base
    m1 = min(fine.shape[-1], n - base)
    if m1 > m0:
        pile[..., k0:k0 + (m1 - m0)] = fine[..., m0:m1]
    total = s.sum(axis=-1, keepdims=True)
    pile = pile / np.where(total > 0, total, 1.0)
    return (1.0 - f) * s + f * pile
