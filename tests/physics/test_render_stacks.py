"""render_stacks, the one rendering entry point, equals the step-by-step sequence it replaced.

The training sets, the mock-up and the identifiability analysis used to write out
build_tables -> intensities -> render themselves; these tests redo that sequence with the same
public functions and require bit-identical spectra, so moving them onto render_stacks changed
nothing (the recorded fingerprint of tools/fingerprint.py checks the whole files).
"""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.library import load_library
from xrfcore.physics import Instrument, build_tables, intensities, library_elements, render, render_stacks
from xrfcore.scan import EnergyCalibration
from xrfcore.simulate.dataset import paint_stack_arrays, pigment_matrix

LIB = load_library()
CAL = EnergyCalibration(-0.96, 0.02)


def _stacks(n, seed=0):
    elements = library_elements(LIB)
    names, pm, rho = pigment_matrix(LIB, elements)
    rng = np.random.default_rng(seed)
    k = len(names)
    upper = rng.dirichlet(np.ones(3), n) @ np.eye(k)[rng.choice(k, 3, replace=False)]
    lower = rng.dirichlet(np.ones(2), n) @ np.eye(k)[rng.choice(k, 2, replace=False)]
    lower_um = np.where(rng.random(n) < 0.5, rng.uniform(20, 80, n), 0.0)
    mf, rt = paint_stack_arrays(upper, rng.uniform(10, 60, n), lower, lower_um, rng.uniform(150, 200, n), LIB, pm,
                                rho, names)
    return elements, mf, rt, rng.uniform(0.5, 2.0, n)


@pytest.mark.parametrize("secondary", [False, True])
def test_all_at_once_equals_the_old_sequence(secondary):
    elements, mf, rt, scatter = _stacks(40)
    ins = Instrument(tube_kv=40.0, secondary=secondary)
    tables = build_tables(elements, ins)
    li, ra, co = intensities(mf, rt, tables, secondary=secondary, dtype=np.float32)
    old = render(li, ra, co, tables, ins, CAL, 1024, scatter_scale=scatter)
    new = render_stacks(mf, rt, elements, ins, CAL, 1024, scatter_scale=scatter, dtype=np.float32)
    assert new.dtype == np.float64 and new.shape == (40, 1024) and new.sum() > 0
    np.testing.assert_array_equal(new, old)


def test_blocks_equal_the_old_block_loop():
    elements, mf, rt, _ = _stacks(50, seed=1)
    ins = Instrument(tube_kv=45.0)
    tables = build_tables(elements, ins)
    old = np.empty((50, 512))
    for a in range(0, 50, 16):
        b = min(50, a + 16)
        li, ra, co = intensities(mf[a:b], rt[a:b], tables, secondary=ins.secondary)
        old[a:b] = render(li, ra, co, tables, ins, CAL, 512)
    np.testing.assert_array_equal(render_stacks(mf, rt, elements, ins, CAL, 512, block=16), old)


def test_per_stack_scatter_in_blocks():
    elements, mf, rt, scatter = _stacks(20, seed=2)
    ins = Instrument()
    whole = render_stacks(mf, rt, elements, ins, CAL, 512, scatter_scale=scatter)
    blocks = render_stacks(mf, rt, elements, ins, CAL, 512, scatter_scale=scatter, block=7)
    np.testing.assert_allclose(blocks, whole, rtol=1e-6)
    plain = render_stacks(mf, rt, elements, ins, CAL, 512)
    assert not np.allclose(plain, whole)  # the scatter factor reaches the spectra


@pytest.mark.parametrize("block", [None, 16])
@pytest.mark.parametrize("secondary", [False, True])
def test_layer_elements_come_from_the_same_pass_and_leave_the_spectra_unchanged(block, secondary):
    from xrfcore.physics import layer_photons

    elements, mf, rt, scatter = _stacks(40, seed=2)
    ins = Instrument(tube_kv=40.0, secondary=secondary)
    plain = render_stacks(mf, rt, elements, ins, CAL, 512, scatter_scale=scatter, block=block)
    spec, per_layer = render_stacks(mf, rt, elements, ins, CAL, 512, scatter_scale=scatter, block=block,
                                    layer_elements=True)
    np.testing.assert_array_equal(spec, plain)
    assert per_layer.shape == (40, mf.shape[1], len(elements)) and np.all(per_layer >= 0)
    # per layer and element = the per-layer line intensities of each element, summed over its lines
    tables = build_tables(elements, ins)
    li, _, _ = intensities(mf, rt, tables, secondary=secondary, per_layer=True)
    onehot = np.zeros((len(tables.lines), len(elements)))
    onehot[np.arange(len(tables.lines)), tables.line_el] = 1.0
    np.testing.assert_allclose(per_layer, li @ onehot, rtol=1e-12, atol=0)
    # an element a layer does not hold delivers nothing from it
    assert np.all(per_layer[mf == 0] == 0)
    # photons: the lines' share of the counts that are not background; layer 1 of one-layer stacks is 0
    two = np.zeros(40, bool)
    two[::2] = True
    ph = layer_photons(per_layer, spec.sum(axis=1), np.full(40, 1e5), 0.2, two)
    assert ph.shape == (40, 2, len(elements)) and np.all(ph[~two, 1] == 0)
    np.testing.assert_allclose(ph[two, 0].sum(axis=1) + ph[two, 1].sum(axis=1),
                               (per_layer[two, :2].sum(axis=(1, 2)) / spec[two].sum(axis=1)) * 0.8e5, rtol=1e-10)
