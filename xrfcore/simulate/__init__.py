"""Training sets and demo scans made with :mod:`xrfcore.physics`.

``make_mockup``/``write_mockup`` live in :mod:`xrfcore.simulate.mockup` (``make_demo_mockup`` is
the name docs/ARCHITECTURE.md uses for the same function); they are imported lazily so that
``python -m xrfcore.simulate.mockup`` runs cleanly.
"""

from xrfcore.simulate.dataset import SimConfig, sample_batch, simulate_dataset

__all__ = ["SimConfig", "sample_batch", "simulate_dataset", "make_mockup", "make_demo_mockup", "write_mockup"]


def __getattr__(name: str):
    if name in ("make_mockup", "make_demo_mockup", "write_mockup"):
        from xrfcore.simulate import mockup

        return mockup.make_mockup if name == "make_demo_mockup" else getattr(mockup, name)
    raise AttributeError(f"module 'xrfcore.simulate' has no attribute {name!r}")
