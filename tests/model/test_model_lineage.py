"""Run-length encoded training masks and scan fingerprints."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.errors import ModelError
from xrfcore.model.lineage import mask_to_runs, runs_to_mask, scan_fingerprint


@pytest.mark.parametrize("seed", range(4))
def test_runs_round_trip(seed):
    m = np.random.default_rng(seed).random((13, 17)) < 0.4
    runs = mask_to_runs(m)
    assert np.array_equal(runs_to_mask(runs, m.shape), m)
    assert sum(b - a for _, a, b in runs) == m.sum()


def test_runs_outside_the_scan_are_refused():
    with pytest.raises(ModelError, match="outside a scan"):
        runs_to_mask([[3, 0, 2]], (2, 2))


def test_fingerprint_sees_a_changed_tail(tmp_path):
    a = tmp_path / "a.bin"
    data = bytearray(np.random.default_rng(0).bytes(3 << 20))
    a.write_bytes(bytes(data))
    fa = scan_fingerprint(a)
    data[-1] ^= 1
    a.write_bytes(bytes(data))
    assert scan_fingerprint(a) != fa
