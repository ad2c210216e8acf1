"""The preprocessing configuration, stored inside every model so inference matches training."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from xrfcore.errors import ConfigError
from xrfcore.preprocess.grid import PAD_MODES, EnergyGrid
from xrfcore.preprocess.transform import NORMALISE_METHODS

__all__ = ["PreprocessConfig"]

CONFIG_VERSION = 1


@dataclass(frozen=True)
class PreprocessConfig:
    """Every preprocessing step and its parameters.

    Steps, in order: rebin onto ``grid`` -> (optional) subtract a SNIP background, clipped at 0
    -> (optional) ``ln(1 + ln(1 + sqrt(X)))`` -> normalise each spectrum.

    Parameters
    ----------
    grid : EnergyGrid
        Model energy grid (keV); default 2.80 keV + 1360 x 20 eV (2.80-30.00 keV).
    snip : bool
        Subtract a SNIP background before the transform.
    snip_width_kev : float
        SNIP clipping half-window (keV), converted to grid channels (rounded, at least 1).
    snip_iterations : int
        Repeats of the SNIP window sweep (1 = PyMca's algorithm).
    snip_smooth : int
        Passes of (1, 2, 1)/4 smoothing before clipping.
    snip_llsqrt : bool
        Clip in log-log-sqrt space.
    transform : bool
        Apply ``X' = ln(1 + ln(1 + sqrt(X)))``.
    normalise : {"max", "sum", "none"}
        Per-spectrum scaling after the transform. Default ``"max"``: every spectrum's maximum
        becomes 1 (all-zero spectra stay zero). This choice is part of a trained model.
    pad : {"zero", "error"}
        Grid parts outside a scan's energy range: zero-filled with a logged warning, or an error.

    Examples
    --------
    >>> cfg = PreprocessConfig(snip=True)
    >>> PreprocessConfig.from_json(cfg.to_json()) == cfg
    True
    """

    grid: EnergyGrid = field(default_factory=EnergyGrid)
    snip: bool = False
    snip_width_kev: float = 0.3
    snip_iterations: int = 1
    snip_smooth: int = 0
    snip_llsqrt: bool = False
    transform: bool = True
    normalise: str = "max"
    pad: str = "zero"

    def __post_init__(self) -> None:
        if not isinstance(self.grid, EnergyGrid):
            raise ConfigError(f"grid must be an EnergyGrid, got {type(self.grid).__name__}")
        if self.normalise not in NORMALISE_METHODS:
            raise ConfigError(f"normalise must be one of {NORMALISE_METHODS}, got {self.normalise!r}")
        if self.pad not in PAD_MODES:
            raise ConfigError(f"pad must be one of {PAD_MODES}, got {self.pad!r}")
        if not (float(self.snip_width_kev) > 0):
            raise ConfigError(f"snip_width_kev must be > 0 keV, got {self.snip_width_kev!r}")
        for name in ("snip_iterations", "snip_smooth"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("snip", "snip_llsqrt", "transform"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        object.__setattr__(self, "snip_width_kev", float(self.snip_width_kev))

    @property
    def snip_width_channels(self) -> int:
        """SNIP half-window in grid channels (at least 1)."""
        return max(1, int(round(self.snip_width_kev / self.grid.step_kev)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (with a ``version``)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["grid"] = self.grid.to_dict()
        d["version"] = CONFIG_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PreprocessConfig":
        """Inverse of :meth:`to_dict`; missing keys take defaults.

        Raises
        ------
        ConfigError
            For unknown keys (named in the message) or invalid values.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"preprocessing config must be a dict, got {type(d).__name__}")
        d = dict(d)
        version = d.pop("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ConfigError(f"preprocessing config version {version!r} is not supported (expected {CONFIG_VERSION})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown preprocessing config keys {unknown}; known keys are {sorted(known)}")
        grid = d.pop("grid", None)
        if grid is not None and not isinstance(grid, EnergyGrid):
            if not isinstance(grid, dict):
                raise ConfigError(f"grid must be a dict with start_kev, step_kev, n_channels, got {grid!r}")
            bad = sorted(set(grid) - {"start_kev", "step_kev", "n_channels"})
            if bad:
                raise ConfigError(f"unknown energy grid keys {bad}; known keys are ['n_channels', 'start_kev', 'step_kev']")
            grid = EnergyGrid(**grid)
        return cls(grid=grid, **d) if grid is not None else cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PreprocessConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"preprocessing config is not valid JSON: {exc}") from exc
        return cls.from_dict(d)

    def describe(self) -> str:
        """One line for humans, e.g. for a model card or the app sidebar."""
        g = self.grid
        steps = [f"rebin {g.start_kev:.2f}-{g.stop_kev:.2f} keV in {g.n_channels} x {g.step_kev * 1000:.0f} eV"]
        if self.snip:
            steps.append(f"SNIP background {self.snip_width_kev:.3g} keV subtracted")
        if self.transform:
            steps.append("ln(1+ln(1+sqrt(X)))")
        steps.append({"max": "divide by max", "sum": "divide by sum", "none": "no normalisation"}[self.normalise])
        return "; ".join(steps) + f" (pad={self.pad})"
