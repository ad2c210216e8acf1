"""A dask.distributed LocalCluster (2 worker processes) gives the same maps as one process."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.maps import predict_cube, predict_to_h5, read_maps


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    yield cluster
    cluster.close()


def test_local_cluster_maps_identical(bundle, scan, cluster, tmp_path):
    from distributed import Client

    local = predict_cube(bundle, scan, rows_per_chunk=3)
    # by address, as the CLI does (--scheduler tcp://...)
    remote = predict_cube(bundle, scan, rows_per_chunk=3, scheduler=cluster.scheduler_address)
    np.testing.assert_allclose(remote, local, rtol=0, atol=1e-6)
    with Client(cluster) as client:
        # every worker process loaded the model itself
        assert len(client.nthreads()) == 2
        out = predict_to_h5(bundle, scan, tmp_path / "maps.h5", rows_per_chunk=2, scheduler=client)
        assert not client.status == "closed"
    np.testing.assert_allclose(read_maps(out).probabilities, local, rtol=0, atol=1e-6)
