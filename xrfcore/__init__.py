"""xrfcore: pigment identification from MA-XRF scans (no UI code here).

Data flows one way: file -> :class:`~xrfcore.scan.Scan` -> preprocessing -> model -> maps.
Heavy dependencies (TensorFlow, PyMca5, Dask) are imported only by the modules that need them.
"""

from xrfcore.errors import XRFError
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__version__ = "0.1.0"
__all__ = ["Scan", "EnergyCalibration", "ScanMetadata", "XRFError", "__version__"]
