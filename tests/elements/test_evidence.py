"""Tests for xrfcore.elements.evidence: the per-spectrum element evidence fit."""

import os
import sys

import numpy as np
import pytest

from xrfcore.elements.evidence import (EvidenceConfig, estimate_resolution, fit_evidence, fit_spectrum,
                                       fit_templates, scan_evidence)
from xrfcore.errors import ConfigError
from xrfcore.scan import EnergyCalibration, Scan

sys.path.insert(0, os.path.dirname(__file__))
from element_cubes import synthetic_cube  # noqa: E402

CAL = EnergyCalibration(-0.05, 0.01)
SMALL = EvidenceConfig(elements=("Ca", "Cr", "Fe", "Co", "Ni", "Cu", "Zn", "As", "Br", "Hg", "Pb"))


def _from_templates(amounts: dict[str, float], config: EvidenceConfig, n: int, seed: int,
                    background: float = 20.0) -> tuple[np.ndarray, EnergyCalibration]:
    """Poisson spectra made from the fit's own templates on its own grid (the fit model is exact)."""
    tpl = fit_templates(config, 30.0)
    rng = np.random.default_rng(seed)
    model = np.zeros(tpl.n_channels)
    for el, a in amounts.items():
        rows = [j for j, o in enumerate(tpl.owners) if o == el]
        main = tpl.element_rows[tpl.elements.index(el)].astype(bool)
        for j in rows:
            if main[j]:
                model[tpl.window] += a / main.sum() * tpl.matrix[j]
    model[tpl.window] += background
    return rng.poisson(np.broadcast_to(model, (n, model.size))).astype(np.float64), tpl.calibration


def test_areas_are_recovered_and_absent_elements_are_standard_normal():
    cfg = EvidenceConfig(elements=SMALL.elements, pileup=False, systematic=0.0)
    truth = {"Fe": 5000.0, "Pb": 3000.0, "Zn": 800.0}
    y, cal = _from_templates(truth, cfg, n=400, seed=0)
    ev = fit_evidence(y, cal, cfg)
    for el, a in truth.items():
        i = ev.column(el)
        mean = ev.net_counts[:, i].mean()
        # unbiased within 4 standard errors of the mean; sigma matches the scatter of the estimates
        assert abs(mean - a) < 4 * ev.sigma[:, i].mean() / np.sqrt(len(y)), el
        assert np.std(ev.net_counts[:, i]) == pytest.approx(ev.sigma[:, i].mean(), rel=0.15), el
    for el in ("Cr", "Co", "Ni", "Cu", "As", "Br"):
        z = ev.significance[:, ev.column(el)]
        assert abs(z.mean()) < 0.3 and 0.75 < z.std() < 1.25, (el, z.mean(), z.std())
        assert np.mean(z >= 5) == 0.0, el
    # a heavy element's significance is the larger of two tests (its L family, its La template): the
    # mean of the maximum of two correlated standard normals, and no more false calls in the tail
    z = ev.significance[:, ev.column("Hg")]
    assert 0.2 < z.mean() < 0.8 and np.mean(z >= 4) == 0.0


def test_as_under_pb_needs_its_own_lines():
    """Pb La sits on As Ka (10.55 / 10.54 keV): pure Pb gives no As, Pb + As gives As."""
    cfg = EvidenceConfig(elements=SMALL.elements, pileup=False)
    pb, cal = _from_templates({"Pb": 20000.0}, cfg, n=50, seed=1)
    both, _ = _from_templates({"Pb": 20000.0, "As": 8000.0}, cfg, n=50, seed=2)
    ev_pb, ev_both = fit_evidence(pb, cal, cfg), fit_evidence(both, cal, cfg)
    assert np.all(ev_pb.significance[:, ev_pb.column("As")] < 5)
    assert np.all(ev_both.significance[:, ev_both.column("As")] > 5)


def test_pileup_sum_peaks_are_explained():
    from xrfcore.physics.detector import apply_pileup

    cfg = EvidenceConfig(elements=SMALL.elements, systematic=0.0)
    y, cal = _from_templates({"Fe": 4e5}, EvidenceConfig(elements=SMALL.elements, pileup=False), n=1, seed=3,
                             background=5.0)
    expected = np.asarray(y[0], dtype=np.float64)
    piled = apply_pileup(expected[None, :], cal, 0.02)  # Fe Ka + Fe Ka at 12.8 keV, Fe Ka + Kb at 13.5 keV
    spectra = np.random.default_rng(4).poisson(np.repeat(piled, 20, axis=0)).astype(float)
    on = fit_evidence(spectra, cal, cfg)
    off = fit_evidence(spectra, cal, EvidenceConfig(elements=SMALL.elements, pileup=False, systematic=0.0))
    assert np.all(on.pileup > 0.5 * 0.02 * expected.sum())
    worst_on = max(on.significance[:, on.column(el)].max() for el in ("Br", "Pb", "Hg", "As"))
    worst_off = max(off.significance[:, off.column(el)].max() for el in ("Br", "Pb", "Hg", "As"))
    assert worst_on < 5
    # without the pile-up template the sum peaks stay in the residual: the fit is far worse, and only the
    # Birge ratio (sigmas scaled by sqrt(chi2)) keeps them from reading as elements (worst_off 2.5 here: the
    # L3 beta templates of Pb, with Lb5 at 13.02 keV, take part of the Fe + Fe sum peaks)
    assert np.median(off.chi2) > 5 * np.median(on.chi2)
    assert worst_off < 5


def test_fit_spectrum_components_add_up_and_match_fit_evidence():
    scan, _ = synthetic_cube({"Fe": 4000.0, "Pb": 3000.0, "Zn": 1500.0}, shape=(2, 2), seed=5)
    spectrum = scan.spectrum(1, 1)
    fit = fit_spectrum(spectrum, scan.calibration, config=SMALL)
    total = fit.background + sum(fit.components.values())
    np.testing.assert_allclose(total, fit.fitted, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fit.residual, fit.counts - fit.fitted)
    ev = fit_evidence(spectrum, scan.calibration, SMALL)
    assert fit.net_counts["Pb"] == pytest.approx(float(ev.net_counts[0, ev.column("Pb")]))
    assert fit.significance["Fe"] > 20 and abs(fit.significance["Co"]) < 5
    assert set(fit.components) >= {"Fe", "Pb", "Zn", "scatter", "pile-up"}


def test_areas_agree_with_pymca_fast_linear_fit():
    """Same synthetic cube through PyMca5's FastXRFLinearFit (its own templates) and ours."""
    from xrfcore.elements.fit import fit_scan

    scan, truth = synthetic_cube({"Fe": 3000.0, "Zn": 2000.0, "Pb": 3000.0}, shape=(6, 6), n_channels=2048, seed=6)
    ours = scan_evidence(scan, EvidenceConfig(elements=("Fe", "Zn", "Pb"), noise_ev=100.0, anode=None))
    pymca = fit_scan(scan, ["Fe", "Zn", "Pb"])
    for el in ("Fe", "Zn", "Pb"):
        a, b = ours.map(el).ravel(), pymca.maps[el].ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.99, el
        assert np.corrcoef(a, truth[el].ravel())[0, 1] > 0.99, el
        # both estimate the family's photons (our templates include escape peaks and efficiency): within 15 %
        assert np.median(a / np.maximum(b, 1.0)) == pytest.approx(1.0, rel=0.15), el


def test_resolution_estimate_finds_the_detector_noise():
    cfg_true = EvidenceConfig(elements=SMALL.elements, noise_ev=140.0, pileup=False)
    y, cal = _from_templates({"Fe": 2e5, "Pb": 1e5, "Zn": 5e4}, cfg_true, n=1, seed=7)
    assert estimate_resolution(y[0], cal, EvidenceConfig(elements=SMALL.elements)).noise_ev == 140.0


def test_scan_that_stops_short_drops_the_lines_it_cannot_see():
    cal = EnergyCalibration(0.0, 0.01)
    short = np.random.default_rng(8).poisson(5.0, (3, 2000)).astype(float)  # up to 20 keV
    ev = fit_evidence(short, cal, EvidenceConfig(elements=("Fe", "Sn", "Pb")))
    assert ev.templates.energy_kev[-1] < 20.0
    assert "Sn K" not in ev.templates.names and "Sn L3" in ev.templates.names
    with pytest.raises(ConfigError, match="too short"):
        fit_evidence(short[:, :250], cal, EvidenceConfig())


def test_config_validation_and_round_trip():
    cfg = EvidenceConfig(noise_ev=120.0, scatter_kev=(16.0,))
    assert EvidenceConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="noise_ev"):
        EvidenceConfig(noise_ev=-1)
    with pytest.raises(ConfigError, match="unknown evidence config keys"):
        EvidenceConfig.from_dict({"noise": 1})


def test_scan_evidence_maps_match_per_spectrum_fit():
    scan, _ = synthetic_cube({"Fe": 2000.0, "Cu": 1000.0}, shape=(5, 4), seed=9)
    maps = scan_evidence(scan, SMALL, rows_per_chunk=2)
    flat = fit_evidence(np.asarray(scan.counts).reshape(-1, scan.n_channels), scan.calibration, SMALL)
    np.testing.assert_allclose(maps.net_counts.reshape(-1, len(maps.elements)), flat.net_counts, rtol=1e-4,
                               atol=1e-2)
    assert maps.map("Cu", "significance").shape == (5, 4)
    assert isinstance(Scan, type)


def test_overlapped_heavy_element_keeps_the_evidence_of_its_other_lines():
    """Pb La on As Ka: Pb's L2/L1 lines at their nominal ratios still carry Pb (nominal-ratio estimate)."""
    cfg = EvidenceConfig(elements=SMALL.elements, pileup=False, noise_ev=100.0, anode=None)
    scan, truth = synthetic_cube({"Pb": 6000.0, "As": 12000.0}, shape=(10, 10), seed=11)
    ev = scan_evidence(scan, cfg)
    z_pb = ev.map("Pb", "significance")
    strong = truth["Pb"] > 2000.0
    # Poisson alone would give ~sqrt(photons); the overlapped La template alone gave ~1/3 of it
    assert np.median(z_pb[strong] / np.sqrt(truth["Pb"][strong])) > 0.3
    assert np.all(ev.map("As", "significance")[truth["As"] > 4000.0] > 5)
    # and an absent heavy element under the same overlap is not invented
    scan0, _ = synthetic_cube({"As": 12000.0, "Hg": 20000.0}, shape=(10, 10), seed=12)
    z0 = scan_evidence(scan0, cfg).map("Pb", "significance")
    assert z0.max() < 4.0 and abs(np.median(z0)) < 1.0


def test_thick_vermilion_is_described_once_the_weak_l_lines_are_modelled():
    """Pure vermilion, simulated with the training physics: Hg L3-O (Lb5, 12.28 keV, 2 % of Hg La) was fitted by
    Pb's L1 template and the reduced chi-square was ~2; with the weak L lines the templates describe it."""
    from dataclasses import replace

    from xrfcore.elements.evidence import config_for_scan
    from xrfcore.elements.lines import MINOR_L_LINES, emission_lines
    from xrfcore.simulate.mockup import make_mockup

    assert "L3O45" in {ln.name.split("/")[0] for ln in emission_lines("Hg", tube_kv=40)}
    assert not MINOR_L_LINES & {ln.name.split("/")[0] for ln in emission_lines("Hg", tube_kv=40, minor_l=False)}
    cal = EnergyCalibration(-0.45, 0.0075)
    counts, labels = make_mockup(seed=202, calibration=cal, n_channels=4096, shape=(16, 16), count_level=1e5,
                                 physics_variant="training")
    r = next(x for x in labels["regions"] if x["name"] == "bare / 6")  # vermilion only, no Pb anywhere
    px = counts[r["row0"]:r["row1"], r["col0"]:r["col1"]].reshape(-1, counts.shape[-1])
    cfg = config_for_scan(Scan.from_array(counts, cal))
    new, old = fit_evidence(px, cal, cfg), fit_evidence(px, cal, replace(cfg, minor_l_lines=False))
    assert np.median(new.chi2) < 1.3 and np.median(old.chi2) > 1.5 * np.median(new.chi2)  # measured 0.88 vs 2.12
    assert abs(np.median(new.amplitude("Pb L1"))) < 0.1 * np.median(old.amplitude("Pb L1"))  # -33 vs +990 photons
    assert np.all(new.significance[:, new.column("Pb")] < 3)
    # a config saved before the field existed keeps the old templates (models trained on them reproduce)
    assert EvidenceConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "minor_l_lines"}).minor_l_lines is False


def test_blocks_fitted_on_several_threads_give_the_numbers_of_one_thread(monkeypatch):
    """fit_evidence fits blocks side by side (BLAS at one thread meanwhile): the same numbers, bit for bit,
    whatever the number of threads or the block size, and the process's BLAS threads are restored."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    y, cal = _from_templates({"Fe": 3000.0, "Pb": 2000.0, "Ca": 900.0}, SMALL, n=300, seed=4)
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    runs = [fit_evidence(y, cal, SMALL, chunk=chunk, workers=workers) for chunk, workers in ((64, 1), (64, 3), (100, 2))]
    for other in runs[1:]:
        for name in ("net_counts", "sigma", "significance", "amplitudes", "pileup", "chi2", "total_counts"):
            np.testing.assert_array_equal(getattr(other, name), getattr(runs[0], name), err_msg=name)
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"] == before
    # an error inside one block reaches the caller, and the BLAS limit is lifted all the same
    import xrfcore.elements.evidence as evidence

    solve = evidence._solve

    def failing(y_full, *args):
        if y_full.shape[0] < 64:                       # the last, short block
            raise FloatingPointError("block failed")
        return solve(y_full, *args)

    monkeypatch.setattr(evidence, "_solve", failing)
    with pytest.raises(FloatingPointError, match="block failed"):
        fit_evidence(y, cal, SMALL, chunk=64, workers=2)
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"] == before
