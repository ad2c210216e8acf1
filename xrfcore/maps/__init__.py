"""Pigment probability maps of whole scans (Dask, chunked) and their export.

Importing this package is cheap; Dask, h5py, Keras and matplotlib load when a function runs.
"""

from xrfcore.maps.combine import combined_element_map, percentile_scale
from xrfcore.maps.export import export_h5, export_png, export_tiff
from xrfcore.maps.inference import MapsFile, predict_cube, predict_maps, predict_to_h5, read_maps, timing_summary

__all__ = [
    "predict_cube",
    "predict_maps",
    "predict_to_h5",
    "read_maps",
    "MapsFile",
    "timing_summary",
    "export_png",
    "export_tiff",
    "export_h5",
    "combined_element_map",
    "percentile_scale",
]
