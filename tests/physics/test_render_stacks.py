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
