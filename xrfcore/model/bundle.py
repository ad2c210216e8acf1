"""A trained model with everything needed to use it: :class:`ModelBundle`, save and load.

File format
-----------
One Keras 3 ``.keras`` file (a zip archive). Keras writes ``config.json``, ``metadata.json``
and ``model.weights.h5``; :func:`save_model` then adds one more entry, ``xrf_metadata.json``,
with the pigment classes (abbreviations and names), the :class:`PreprocessConfig` (energy
grid included), the training description, metrics, library version and lineage. Keras ignores
the extra entry, so the file still loads in plain Keras (any backend) with
``keras.saving.load_model(path, safe_mode=True, compile=False)``. No sidecar file is needed.

Safety
------
:func:`load_model` loads in Keras safe mode and refuses any layer that is not a built-in Keras
layer (``Lambda``, ``TFSMLayer``, custom or registered classes) *before* Keras deserialises it,
so a model file from a user never runs code.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from xrfcore.atomic import atomic_path
from xrfcore.common import json_safe, utc_now
from xrfcore.common import sha256_file as _sha256
from xrfcore.errors import CalibrationError, ModelError
from xrfcore.paths import DEFAULT_MODEL_ENV, default_model_path

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from xrfcore.preprocess import PreprocessConfig
    from xrfcore.scan import Scan

__all__ = [
    "ModelBundle",
    "save_model",
    "load_model",
    "default_model_path",
    "check_compatible",
    "METADATA_ENTRY",
    "FORMAT_VERSION",
    "DEFAULT_MODEL_ENV",
    "json_safe",
]

#: Name of our entry inside the ``.keras`` zip.
METADATA_ENTRY = "xrf_metadata.json"
#: Version of the ``xrf_metadata.json`` layout.
FORMAT_VERSION = 1

# Layer classes a pigment model may contain (all built into Keras, none runs user code).
_ALLOWED_LAYERS = frozenset(
    {
        "Functional", "Sequential", "InputLayer", "Conv1D", "LeakyReLU", "ReLU", "Activation",
        "BatchNormalization", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
        "GlobalMaxPooling1D", "Flatten", "Dropout", "SpatialDropout1D", "Dense", "Reshape",
        "LayerNormalization", "Add", "Concatenate",
    }
)


@dataclass
class ModelBundle:
    """A Keras model plus what it was trained for.

    Attributes
    ----------
    model : keras.Model
        Input ``(batch, grid.n_channels, 1)``, output ``(batch, K)`` probabilities.
    classes : list of str
        Class abbreviations, in output order (e.g. ``["CrG", "CrY", ...]``).
    class_names : list of str
        Full pigment names, same order.
    preprocess : PreprocessConfig
        Preprocessing (energy grid included) applied to raw counts before the model.
    metadata : dict
        JSON-able: ``training`` (data description), ``metrics``, ``library_version``,
        ``lineage`` (list of steps, e.g. pretrain then finetune), ``created`` (ISO time, UTC).
    path : Path or None
        File it was loaded from or saved to.
    sha256 : str or None
        SHA-256 of that file.
    """

    model: "keras.Model"
    classes: list[str]
    class_names: list[str]
    preprocess: "PreprocessConfig"
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        self.class_names = [str(c) for c in self.class_names]
        if len(self.classes) != len(self.class_names):
            raise ModelError(
                f"{len(self.classes)} class abbreviations but {len(self.class_names)} class names; "
                "give one name per class"
            )
        n_out = self.model.output_shape[-1]
        layout = (self.metadata.get("evidence_model") or {}).get("layout") if isinstance(self.metadata, dict) else None
        expected = len(self.classes)
        if layout:
            from xrfcore.model.evidence_model import OutputLayout

            expected = OutputLayout.from_dict(layout).n_outputs
        if n_out != expected:
            raise ModelError(f"the model has {n_out} outputs but {expected} were expected for {len(self.classes)} "
                             "classes")
        shapes = self.model.input_shape if isinstance(self.model.input_shape, list) else [self.model.input_shape]
        n_in = shapes[0][1]
        if n_in != self.preprocess.grid.n_channels:
            raise ModelError(
                f"the model takes {n_in} channels but the preprocessing grid has "
                f"{self.preprocess.grid.n_channels}; the grid must match the model input"
            )

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_channels(self) -> int:
        """Model input length (energy-grid channels)."""
        return self.preprocess.grid.n_channels

    def describe(self) -> str:
        """One line for humans: classes, grid, origin."""
        src = self.path.name if self.path else "unsaved"
        return f"{src}: {self.n_classes} pigments ({', '.join(self.classes)}); {self.preprocess.describe()}"


def _metadata_payload(bundle: ModelBundle) -> dict[str, Any]:
    meta = json_safe(dict(bundle.metadata))
    meta.setdefault("created", utc_now())
    return {
        "format_version": FORMAT_VERSION,
        "classes": list(bundle.classes),
        "class_names": list(bundle.class_names),
        "preprocess": bundle.preprocess.to_dict(),
        "metadata": meta,
    }


def save_model(bundle: ModelBundle, path: str | os.PathLike) -> Path:
    """Write ``bundle`` to one ``.keras`` file, atomically; updates ``bundle.path``/``sha256``.

    Parameters
    ----------
    bundle : ModelBundle
    path : path-like
        Must end in ``.keras``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ModelError
        If the suffix is not ``.keras`` or the metadata is not JSON-serialisable.
    """
    final = Path(path)
    if final.suffix != ".keras":
        raise ModelError(f"model files must end in .keras, got {final.name!r}; e.g. {final.with_suffix('.keras').name}")
    payload = _metadata_payload(bundle)
    try:
        text = json.dumps(payload, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model metadata is not JSON-serialisable: {exc}") from exc
    from xrfcore.model.architecture import copy_model

    model = copy_model(bundle.model) if bundle.model.compiled else bundle.model
    with atomic_path(final) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(METADATA_ENTRY, text)
    bundle.metadata = payload["metadata"]
    bundle.path = final
    bundle.sha256 = _sha256(final)
    return final


def _walk_layer_configs(cfg: Any) -> list[tuple[str, str]]:
    """(class_name, module) of every serialised object that looks like a layer."""
    found: list[tuple[str, str]] = []
    if isinstance(cfg, dict):
        if "class_name" in cfg and isinstance(cfg.get("config"), dict) and "name" in cfg["config"]:
            found.append((str(cfg["class_name"]), str(cfg.get("module") or "")))
        for v in cfg.values():
            found.extend(_walk_layer_configs(v))
    elif isinstance(cfg, list):
        for v in cfg:
            found.extend(_walk_layer_configs(v))
    return found


#: Largest JSON member of a model file read (bytes); ours are a few kB.
MAX_JSON_MEMBER_BYTES = 16 << 20
#: Largest total uncompressed size of a model file's members (bytes).
MAX_ARCHIVE_BYTES = 4 << 30
_JSON_MEMBERS = ("config.json", "metadata.json", METADATA_ENTRY)


def _json_member(zf: zipfile.ZipFile, name: str, path: Path, *, strict: bool) -> Any:
    raw = zf.read(name)
    try:
        text = raw.decode("utf-8")
        if strict:
            def no_constants(c: str) -> Any:
                raise ValueError(f"{c} is not allowed")
            return json.loads(text, parse_constant=no_constants)
        return json.loads(text)
    except RecursionError:
        raise ModelError(f"{path}: {name} is nested too deeply to be a model description") from None
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, NaN/Infinity, huge integers
        raise ModelError(f"{path}: {name} is not valid JSON ({str(exc)[:200]}); the model file is damaged") from None


def _read_archive(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return (keras config.json, our metadata or None); ModelError if not a sound .keras zip.

    Member sizes, compression methods and CRCs are checked before anything is parsed, so a
    damaged or padded archive is refused without reading it into memory.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            if "config.json" not in names or "model.weights.h5" not in names:
                raise ModelError(
                    f"{path} is not a Keras 3 .keras model (config.json/model.weights.h5 missing); "
                    "save the model with keras 3 `model.save('name.keras')`"
                )
            total = 0
            for info in infos:
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise ModelError(
                        f"{path}: member {info.filename!r} uses compression method {info.compress_type}, which "
                        "Keras does not write; the model file is damaged"
                    )
                if info.filename in _JSON_MEMBERS and info.file_size > MAX_JSON_MEMBER_BYTES:
                    raise ModelError(
                        f"{path}: member {info.filename!r} declares {info.file_size} bytes; a model description is a "
                        f"few kB (limit {MAX_JSON_MEMBER_BYTES >> 20} MiB): the file is damaged or not a pigment model"
                    )
                total += info.file_size
            if total > MAX_ARCHIVE_BYTES:
                raise ModelError(f"{path}: the archive declares {total} bytes uncompressed; far too large for a model")
            bad = zf.testzip()  # CRC of every member, read in small blocks
            if bad is not None:
                raise ModelError(f"{path}: member {bad!r} is corrupt (CRC mismatch); copy or train the model again")
            config = _json_member(zf, "config.json", path, strict=False)
            meta = _json_member(zf, METADATA_ENTRY, path, strict=True) if METADATA_ENTRY in names else None
    except ModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError, NotImplementedError,
            RuntimeError, zlib.error) as exc:
        raise ModelError(f"{path} is not a readable .keras model file ({type(exc).__name__}: {exc}); "
                         "the file may be truncated or corrupt: copy or train it again") from exc
    if not isinstance(config, dict):
        raise ModelError(f"{path}: config.json must be a JSON object, got {type(config).__name__}; the file is damaged")
    if meta is not None and not isinstance(meta, dict):
        raise ModelError(f"{path}: {METADATA_ENTRY} must be a JSON object, got {type(meta).__name__}")
    return config, meta


def _check_metadata(meta: dict[str, Any], path: Path) -> "PreprocessConfig":
    """Validate our metadata entry before Keras is imported; return its PreprocessConfig."""
    from xrfcore.errors import ConfigError
    from xrfcore.preprocess import PreprocessConfig

    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelError(f"{path} has model metadata version {str(version)[:40]!r}; this xrfcore reads version "
                         f"{FORMAT_VERSION}")
    for key in ("classes", "class_names"):
        value = meta.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ModelError(f"{path}: model metadata {key!r} must be a non-empty list of strings, got "
                             f"{str(value)[:60]!r}")
    if len(meta["classes"]) != len(meta["class_names"]):
        raise ModelError(f"{path}: model metadata has {len(meta['classes'])} classes but "
                         f"{len(meta['class_names'])} class names")
    if not isinstance(meta.get("metadata", {}), dict):
        raise ModelError(f"{path}: model metadata 'metadata' must be an object, got {type(meta['metadata']).__name__}")
    if not isinstance(meta.get("preprocess"), dict):
        raise ModelError(f"{path}: model metadata 'preprocess' must be an object, got "
                         f"{type(meta.get('preprocess')).__name__}")
    try:
        return PreprocessConfig.from_dict(meta["preprocess"])
    except (KeyError, TypeError, ValueError, ConfigError, CalibrationError) as exc:
        raise ModelError(f"{path} has invalid model metadata 'preprocess' ({type(exc).__name__}: {exc})") from exc


def _check_safe(config: dict[str, Any], path: Path) -> None:
    if config.get("class_name") not in ("Functional", "Sequential") or not isinstance(config.get("config"), dict):
        raise ModelError(
            f"{path}: config.json describes a {str(config.get('class_name'))[:40]!r}, not a Keras Functional or "
            "Sequential model; the file is damaged or not a pigment model"
        )
    try:
        layers = _walk_layer_configs(config.get("config", {}))
    except RecursionError:
        raise ModelError(f"{path}: config.json is nested too deeply to be a model") from None
    for cls, module in layers + [(str(config.get("class_name", "")), str(config.get("module") or ""))]:
        if cls in {"Lambda", "TFSMLayer"} or (module and not module.startswith("keras")):
            raise ModelError(
                f"{path} contains a {cls!r} layer (module {module!r}) that can run arbitrary code; "
                "only models built from standard Keras layers can be loaded"
            )
        if cls and cls not in _ALLOWED_LAYERS and module.startswith("keras.layers"):
            raise ModelError(
                f"{path} contains a {cls!r} layer, which pigment models do not use; allowed layers are "
                f"{', '.join(sorted(_ALLOWED_LAYERS))}"
            )


def load_model(path: str | os.PathLike | None = None) -> ModelBundle:
    """Load a model file written by :func:`save_model` (Keras safe mode, no compile).

    Parameters
    ----------
    path : path-like, optional
        A ``.keras`` file; default :func:`default_model_path`.

    Returns
    -------
    ModelBundle

    Raises
    ------
    ModelError
        If the file is missing, not a ``.keras`` archive, corrupt, carries no
        ``xrf_metadata.json``, or contains a layer that could run code (``Lambda``, custom).
    """
    p = Path(path) if path is not None else default_model_path()
    if not p.is_file():
        raise ModelError(f"model file {p} does not exist; pass --model PATH or train one with `python -m xrfcore train`")
    config, meta = _read_archive(p)
    _check_safe(config, p)
    if meta is None:
        raise ModelError(
            f"{p} is a plain Keras model without {METADATA_ENTRY} (pigment classes, preprocessing); "
            "train or finetune it with xrfcore, which saves that information"
        )
    pre = _check_metadata(meta, p)
    import keras

    try:
        model = keras.saving.load_model(p, safe_mode=True, compile=False)
    except Exception as exc:  # keras raises ValueError/TypeError/OSError for bad content
        detail = " ".join(str(exc).split())[:300]  # one line: Keras messages span several
        raise ModelError(f"{p} could not be loaded as a safe Keras model: {type(exc).__name__}: {detail}") from exc
    try:
        return ModelBundle(
            model=model,
            classes=list(meta["classes"]),
            class_names=list(meta["class_names"]),
            preprocess=pre,
            metadata=dict(meta.get("metadata", {})),
            path=p,
            sha256=_sha256(p),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{p} has invalid model metadata ({type(exc).__name__}: {exc})") from exc


def check_compatible(
    bundle: ModelBundle,
    scan: "Scan",
    *,
    classes: Sequence[str] | None = None,
    min_coverage: float = 0.9,
) -> None:
    """Raise if ``scan`` (or a pigment library) does not fit ``bundle``.

    Parameters
    ----------
    bundle : ModelBundle
    scan : Scan
        Its calibration and channel count give the energy range (keV).
    classes : sequence of str, optional
        Class abbreviations the caller expects (e.g. ``load_library().classes``); must equal the
        model's classes, in order.
    min_coverage : float
        Fraction of the model's energy grid (keV) the scan must cover. The grid start (2.8 keV
        by default) must always be covered to within one grid step.

    Raises
    ------
    CalibrationError
        If the scan's energy axis does not cover the model's grid.
    ModelError
        If ``classes`` differ from the model's.
    """
    grid = bundle.preprocess.grid
    from xrfcore.preprocess.grid import grid_coverage, source_edges_kev

    edges = source_edges_kev(scan.calibration, scan.n_channels)
    e0, e1 = float(edges[0]), float(edges[-1])
    frac = grid_coverage(scan.calibration, scan.n_channels, grid)
    if e0 > grid.start_kev + grid.step_kev or frac < min_coverage:
        raise CalibrationError(
            f"the scan covers {e0:.2f}-{e1:.2f} keV but the model needs {grid.start_kev:.2f}-{grid.stop_kev:.2f} keV "
            f"({100 * frac:.0f}% covered, at least {100 * min_coverage:.0f}% and the start needed); check the scan's "
            "energy calibration (offset/gain keV) or use a model trained on a grid inside the scan's range"
        )
    if classes is not None and list(classes) != list(bundle.classes):
        raise ModelError(
            f"the model predicts {list(bundle.classes)} but the library has {list(classes)}; "
            "use a model trained (or finetuned) for this pigment library"
        )
