"""Exception types for problems a user can fix.

Every expected failure (a bad file, a wrong calibration, an unknown pigment) raises a
subclass of :class:`XRFError`. The CLI prints its message and exits with code 2; the app
shows it with ``st.error``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "XRFError",
    "ScanReadError",
    "CalibrationError",
    "ConfigError",
    "LibraryError",
    "SimulationError",
    "LabelError",
    "ModelError",
    "JobError",
]


class XRFError(Exception):
    """Base class: an expected, user-fixable problem. The message says what and how to fix."""


class ScanReadError(XRFError):
    """A scan file cannot be read (unknown format, truncated, wrong shape, bad values)."""


class CalibrationError(XRFError):
    """An energy calibration is invalid (gain <= 0, non-monotonic axis, grid not covered)."""


class ConfigError(XRFError):
    """A configuration (preprocessing, simulation, training) is invalid."""


class LibraryError(XRFError):
    """The pigment library or a pigment entry is invalid (bad formula, density <= 0, unknown name)."""


class SimulationError(XRFError):
    """A layer stack or simulation setting is physically invalid."""


class LabelError(XRFError):
    """A label file is invalid (unknown pigment, region outside the scan, conflicts, empty)."""


class ModelError(XRFError):
    """A model file is invalid, unsafe, or does not match the scan or library."""


class JobError(XRFError):
    """A background job cannot be started, found or cancelled."""
