"""Seeded generator of hostile input files for every reader and parser.

:func:`make_cases` writes small valid fixtures (our HDF5 layout, a NeXus-like HDF5, ``.npy``,
``.npz``, ``.rpl`` + ``.raw``, ``.spx``, a SPEC ``.mca``, PyMca's ``Steel.spe`` and
``XRFSpectrum.mca``, Bruker-container-like ``.bcf`` headers, label JSON/CSV/HDF5 and, when a
model file is given, a ``.keras`` archive) and then mutated copies of them: truncations at many
cut points, byte flips, header edits (huge, negative, inf, NaN and string sizes and
calibrations), sparse HDF5 with huge declared shapes and ``.npy`` headers with overflowing
shapes. Every case is a dict::

    {"id": "npy/header/shape-overflow", "kind": "scan" | "labels" | "model",
     "path": "...", "inputs": ["...", ...], "must_fail": bool}

``must_fail`` marks files that lost data a reader can know about (a truncated ``.npy``,
``.raw``, ``.spe`` data block, HDF5, ``.keras`` or ``.spx``): reading them as a success is a
"truncated read" failure of the reader. The same seed gives the same files.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_cases", "LABEL_SCAN_SHAPE"]

#: Scan shape (rows, cols) the label cases are loaded against.
LABEL_SCAN_SHAPE = (6, 8)

_BAD_NUMBERS = ["inf", "-inf", "nan", "NaN", "1e400", "-1", "-5", "0", "abc", "", "3.5", "1e12",
                "99999999999999999999", "0x10", "1_0", "２"]


def _cube(shape=(4, 5, 64), seed=0, dtype=np.uint16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w, c = shape
    ch = np.arange(c)
    centre = (np.arange(h * w).reshape(h, w, 1) % (c // 2)) + c // 4
    lam = 2.0 + 50.0 * np.exp(-0.5 * ((ch - centre) / 2.0) ** 2)
    return rng.poisson(lam).astype(dtype)


class _Maker:
    def __init__(self, root: Path, seed: int):
        self.root = Path(root)
        self.rng = np.random.default_rng(seed)
        self.cases: list[dict[str, Any]] = []
        self.n = 0

    def path(self, name: str) -> Path:
        self.n += 1
        d = self.root / f"c{self.n:05d}"
        d.mkdir(parents=True, exist_ok=True)
        return d / name

    def add(self, cid: str, kind: str, path: Path, *, inputs=None, must_fail=False, control=False) -> None:
        self.cases.append({"id": cid, "kind": kind, "path": str(path),
                           "inputs": [str(p) for p in (inputs or [path])], "must_fail": bool(must_fail),
                           "control": bool(control)})

    # generic byte mutations ------------------------------------------------------------
    def cuts(self, data: bytes, n: int, *, head: int = 0) -> list[int]:
        size = len(data)
        pts = set()
        for frac in np.linspace(0.02, 0.98, max(n // 2, 1)):
            pts.add(int(size * frac))
        pts.update(int(x) for x in self.rng.integers(1, size, size=max(n - len(pts), 0)))
        if head:
            pts.update(int(x) for x in self.rng.integers(1, min(head, size), size=3))
        pts.update({1, size - 1})
        return sorted(p for p in pts if 0 < p < size)[:n + 4]

    def bytes_variants(self, kind: str, name: str, data: bytes, tag: str, *, n_cut: int, n_flip: int,
                       flip_region: int | None = None, truncation_fails=True, extra_files=(),
                       fail_cut=None, control=True) -> None:
        """The valid file (a control that must read), truncated copies and copies with flipped bytes."""
        p = self.path(name)
        p.write_bytes(data)
        for extra_name, extra_data in extra_files:
            (p.parent / extra_name).write_bytes(extra_data)
        self.add(f"{tag}/{'valid' if control else 'original'}", kind, p,
                 inputs=[p] + [p.parent / e for e, _ in extra_files], control=control)
        for cut in self.cuts(data, n_cut, head=flip_region or 0):
            p = self.path(name)
            p.write_bytes(data[:cut])
            for extra_name, extra_data in extra_files:
                (p.parent / extra_name).write_bytes(extra_data)
            fails = truncation_fails if fail_cut is None else fail_cut(cut)
            self.add(f"{tag}/cut{cut}", kind, p, inputs=[p] + [p.parent / e for e, _ in extra_files],
                     must_fail=fails)
        for i in range(n_flip):
            buf = bytearray(data)
            hi = len(buf) if flip_region is None or i % 2 else min(flip_region, len(buf))
            for _ in range(int(self.rng.integers(1, 4))):
                pos = int(self.rng.integers(0, hi))
                buf[pos] ^= int(self.rng.integers(1, 256))
            p = self.path(name)
            p.write_bytes(bytes(buf))
            for extra_name, extra_data in extra_files:
                (p.parent / extra_name).write_bytes(extra_data)
            self.add(f"{tag}/flip{i}", kind, p, inputs=[p] + [p.parent / e for e, _ in extra_files])


# -- scans ------------------------------------------------------------------------------------
def _h5_bytes(build) -> bytes:  # noqa: ANN001 - callable(h5py.File)
    import h5py

    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        build(f)
    return bio.getvalue()


def _own_layout(f, cube=None, **attrs) -> None:  # noqa: ANN001
    cube = _cube() if cube is None else cube
    g = f.create_group("xrf")
    ds = g.create_dataset("counts", data=cube, chunks=(1,) + cube.shape[1:], compression="gzip")
    ds.attrs.update({"offset_keV": -0.955, "gain_keV": 0.02, "quadratic_keV": 0.0, **attrs})
    g.create_dataset("energy_keV", data=-0.955 + 0.02 * np.arange(cube.shape[2]))
    labels = np.zeros(cube.shape[:2] + (2,), np.uint8)
    labels[1:3, :, 1] = 1
    g.create_dataset("labels", data=labels)
    g.create_dataset("label_names", data=np.array([b"LW", b"VM"]))


def _nexus(f, cube=None, axes: Any = "energy") -> None:  # noqa: ANN001
    cube = _cube((3, 4, 64), seed=1) if cube is None else cube
    entry = f.create_group("entry")
    entry.attrs["NX_class"] = "NXentry"
    data = entry.create_group("data")
    data.attrs.update({"NX_class": "NXdata", "signal": "counts"})
    if axes is not None:
        data.attrs["axes"] = axes
    data.create_dataset("counts", data=cube)
    e = data.create_dataset("energy", data=1000 * (0.01 + 0.02 * np.arange(cube.shape[2])))
    e.attrs["units"] = "eV"


def _hdf5_cases(m: _Maker, scale: int) -> None:
    import h5py

    own = _h5_bytes(_own_layout)
    nexus = _h5_bytes(_nexus)
    m.bytes_variants("scan", "own.h5", own, "h5own", n_cut=6 * scale, n_flip=8 * scale, flip_region=4096)
    m.bytes_variants("scan", "nexus.h5", nexus, "h5nexus", n_cut=3 * scale, n_flip=6 * scale, flip_region=2048)

    def write(tag: str, build) -> None:  # noqa: ANN001
        p = m.path("edit.h5")
        with h5py.File(p, "w") as f:
            build(f)
        m.add(f"h5edit/{tag}", "scan", p)

    for key in ("offset_keV", "gain_keV", "quadratic_keV"):
        for bad in ("abc", np.nan, np.inf, -1.0, np.array([1.0, 2.0]), np.bytes_(b"\xff\xfe")):
            write(f"{key}={bad!r}"[:40], lambda f, k=key, b=bad: _own_layout(f, **{k: b}))

    def pymca_cal(cal, channels=None):  # noqa: ANN001, ANN202
        def build(f):  # noqa: ANN001
            g = f.create_group("x")
            g.create_dataset("data", data=_cube())
            g.create_dataset("calibration", data=cal)
            if channels is not None:
                g.create_dataset("channels", data=channels)
        return build

    write("pymca-cal-strings", pymca_cal(np.array([b"a", b"b", b"c"])))
    write("pymca-cal-nan", pymca_cal(np.array([np.nan, 0.01, 0.0])))
    write("pymca-channels-string", pymca_cal(np.array([0.0, 0.01, 0.0]), np.array([b"abc"] * 64)))
    write("pymca-channels-inf", pymca_cal(np.array([0.0, 0.01, 0.0]), np.full(64, np.inf)))
    write("pymca-cal-attr-string", lambda f: f.create_dataset("data", data=_cube()).attrs.__setitem__(
        "calibration", "0 0.01 0"))
    for axes in (5, 3.5, np.array([7, 8]), "missing", np.array([b"energy", b"x"])):
        write(f"nexus-axes={axes!r}"[:40], lambda f, a=axes: _nexus(f, axes=a))

    def names_group(f):  # noqa: ANN001
        g = f.create_group("xrf")
        g.create_dataset("counts", data=_cube())
        g.create_dataset("labels", data=np.zeros((4, 5, 2), np.uint8))
        g.create_group("label_names")
    write("label_names-group", names_group)

    for shape in ((4, 4, 0), (0, 4, 4096), (4, 0, 64), (1, 1, 1), (2, 2, 3)):
        write(f"shape{shape}", lambda f, s=shape: f.create_dataset("xrf/counts", shape=s, dtype="u2"))

    def labels_only(f):  # noqa: ANN001
        g = f.create_group("xrf")
        g.create_dataset("labels", data=np.ones((48, 64, 11), np.uint8))
        g.create_dataset("label_names", data=np.array([b"LW"] * 11))
        g.create_dataset("mask", data=np.ones((48, 64), bool))
    write("labels-only", labels_only)
    write("huge-float", lambda f: f.create_dataset("xrf/counts", data=np.full((4, 4, 64), 1e308)))
    write("float-inf", lambda f: f.create_dataset("xrf/counts", data=np.full((4, 4, 64), np.inf, np.float32)))
    write("negative-int", lambda f: f.create_dataset("xrf/counts", data=-_cube().astype(np.int32)))
    write("nan", lambda f: f.create_dataset("xrf/counts", data=np.full((4, 4, 64), np.nan)))
    write("strings", lambda f: f.create_dataset("xrf/counts", data=np.full((4, 4, 64), b"ab")))
    write("bool", lambda f: f.create_dataset("xrf/counts", data=np.ones((4, 4, 64), bool)))
    write("complex", lambda f: f.create_dataset("xrf/counts", data=np.ones((4, 4, 64), complex)))
    write("compound", lambda f: f.create_dataset("xrf/counts", shape=(4, 4, 64), dtype=[("a", "<i4"), ("b", "<f4")]))
    write("2d", lambda f: f.create_dataset("xrf/counts", data=np.ones((16, 64))))
    write("4d", lambda f: f.create_dataset("xrf/counts", data=np.ones((2, 2, 2, 64))))
    write("empty-file", lambda f: None)
    write("energy-strings", lambda f: (f.create_dataset("d", data=_cube()),
                                       f.create_dataset("energy", data=np.array([b"x"] * 64))))
    write("energy-nan", lambda f: (f.create_dataset("d", data=_cube()), f.create_dataset("energy", data=np.full(64, np.nan))))
    write("energy-const", lambda f: (f.create_dataset("d", data=_cube()), f.create_dataset("energy", data=np.ones(64))))
    write("external-link", lambda f: f.__setitem__("xrf", h5py.ExternalLink("missing.h5", "/xrf")))
    write("soft-link-loop", lambda f: (f.create_group("a"), f["a"].__setitem__("b", h5py.SoftLink("/a/b"))))
    write("meta-attr-strings", lambda f: _own_layout(f, tube_kv="abc", live_time_s=np.array([1, 2])))
    # sparse files with huge declared shapes (chunked, unallocated; and contiguous)
    for shape in ((100000, 100000, 4096), (2, 2000000, 4096), (1, 1, 2**31), (3000, 3000, 4096)):
        write(f"sparse-chunked{shape}", lambda f, s=shape: f.create_dataset(
            "xrf/counts", shape=s, dtype="u4", chunks=(1, 1, min(s[2], 4096))))
    write("sparse-contig", lambda f: f.create_dataset("xrf/counts", shape=(5000, 5000, 4096), dtype="u2"))

    def partial(f):  # noqa: ANN001  a scan whose writer stopped after two rows
        ds = f.create_dataset("xrf/counts", shape=(8, 5, 64), dtype="u2", chunks=(1, 5, 64))
        ds[:2] = _cube((2, 5, 64))
        ds.attrs.update({"offset_keV": 0.0, "gain_keV": 0.02})
    write("partial-rows", partial)


def _npy_header(shape_txt: str, descr: str = "'<u2'", fortran="False", version=(1, 0)) -> bytes:
    header = ("{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_txt)).encode("latin-1")
    major = version[0]
    size_fmt = "<H" if major == 1 else "<I"
    pre = 6 + 2 + struct.calcsize(size_fmt)
    pad = (-(pre + len(header) + 1)) % 64
    header = header + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(size_fmt, len(header)) + header


def _npy_cases(m: _Maker, scale: int) -> None:
    cube = _cube((4, 5, 64))
    bio = io.BytesIO()
    np.save(bio, cube)
    data = bio.getvalue()
    m.bytes_variants("scan", "cube.npy", data, "npy", n_cut=5 * scale, n_flip=4 * scale, flip_region=128)
    payload = cube.tobytes()
    edits = {
        "shape-overflow": _npy_header("(1000000000, 1000000000, 1000000000)"),
        "shape-2**64": _npy_header("(%d, 1, 1)" % 2**64),
        "shape-negative": _npy_header("(-4, 5, 64)"),
        "shape-huge-row": _npy_header("(1, 5000000000, 64)"),
        "shape-float": _npy_header("(4.0, 5, 64)"),
        "shape-string": _npy_header("('4', 5, 64)"),
        "shape-4d": _npy_header("(1, 4, 5, 64)"),
        "shape-2d": _npy_header("(20, 64)"),
        "shape-0": _npy_header("(0, 5, 64)"),
        "version3": _npy_header("(4, 5, 64)", version=(3, 0)),
        "version2": _npy_header("(4, 5, 64)", version=(2, 0)),
        "version9": _npy_header("(4, 5, 64)", version=(9, 0)),
        "timedelta": _npy_header("(4, 5, 64)", descr="'<m8[s]'"),
        "datetime": _npy_header("(4, 5, 64)", descr="'<M8[s]'"),
        "complex": _npy_header("(4, 5, 16)", descr="'<c16'"),
        "bool": _npy_header("(4, 5, 64)", descr="'|b1'"),
        "bytes": _npy_header("(4, 5, 32)", descr="'|S4'"),
        "unicode": _npy_header("(4, 5, 16)", descr="'<U2'"),
        "object": _npy_header("(4, 5, 64)", descr="'|O'"),
        "structured": _npy_header("(4, 5, 32)", descr="[('a', '<u2'), ('b', '<u2')]"),
        "void": _npy_header("(4, 5, 64)", descr="'|V2'"),
        "descr-garbage": _npy_header("(4, 5, 64)", descr="'zz'"),
        "fortran": _npy_header("(4, 5, 64)", fortran="True"),
        "fortran-string": _npy_header("(4, 5, 64)", fortran="'yes'"),
        "header-not-dict": b"\x93NUMPY\x01\x00" + struct.pack("<H", 63) + b"[1, 2, 3]" + b" " * 53 + b"\n",
        "header-len-huge": b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{'descr'",
        "header-eval": _npy_header("__import__('os').getpid()"),
        "header-deep": _npy_header("(" * 500 + "1" + ")" * 500),
    }
    for tag, head in edits.items():
        p = m.path("cube.npy")
        p.write_bytes(head + payload)
        m.add(f"npy/header/{tag}", "scan", p, must_fail=tag in ("shape-overflow", "shape-2**64", "shape-huge-row"))
    p = m.path("cube.npy")
    p.write_bytes(_npy_header("(4, 5, 64)", descr="'<f8'") + np.full((4, 5, 64), -1.0).tobytes())
    m.add("npy/negative-float", "scan", p)
    p = m.path("cube.npy")
    p.write_bytes(_npy_header("(4, 5, 64)", descr="'<i2'") + (-cube.astype("<i2")).tobytes())
    m.add("npy/negative-int", "scan", p)


def _npz_bytes(arrays: dict[str, Any], compressed: bool) -> bytes:
    bio = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(bio, **arrays)
    return bio.getvalue()


def _zip_set_method(data: bytes, method: int) -> bytes:
    """Rewrite every local and central header's compression method to ``method``."""
    buf = bytearray(data)
    i = 0
    while True:
        i = buf.find(b"PK\x03\x04", i)
        if i < 0:
            break
        buf[i + 8:i + 10] = struct.pack("<H", method)
        i += 4
    i = 0
    while True:
        i = buf.find(b"PK\x01\x02", i)
        if i < 0:
            break
        buf[i + 10:i + 12] = struct.pack("<H", method)
        i += 4
    return bytes(buf)


def _zip_set_sizes(data: bytes, size: int) -> bytes:
    """Set every member's declared uncompressed size (local and central headers)."""
    buf = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = 0
        while True:
            i = buf.find(sig, i)
            if i < 0:
                break
            buf[i + off:i + off + 4] = struct.pack("<I", size)
            i += 4
    return bytes(buf)


def _npz_cases(m: _Maker, scale: int) -> None:
    cube = _cube((4, 5, 64))
    good = {"counts": cube, "offset_keV": np.float64(-0.95), "gain_keV": np.float64(0.02)}
    plain = _npz_bytes(good, False)
    comp = _npz_bytes(good, True)
    m.bytes_variants("scan", "cube.npz", plain, "npz", n_cut=3 * scale, n_flip=3 * scale)
    m.bytes_variants("scan", "cube.npz", comp, "npzc", n_cut=3 * scale, n_flip=4 * scale)
    edits: dict[str, bytes] = {
        "gain-array": _npz_bytes({**good, "gain_keV": np.array([0.01, 0.02])}, False),
        "gain-string": _npz_bytes({**good, "gain_keV": np.array("abc")}, False),
        "gain-nan": _npz_bytes({**good, "gain_keV": np.float64(np.nan)}, False),
        "gain-negative": _npz_bytes({**good, "gain_keV": np.float64(-0.01)}, False),
        "offset-inf": _npz_bytes({**good, "offset_keV": np.float64(np.inf)}, False),
        "quad-strings": _npz_bytes({**good, "quadratic_keV": np.array([b"x"])}, False),
        "cube-negative": _npz_bytes({**good, "counts": -cube.astype(np.int32)}, True),
        "cube-float-nan": _npz_bytes({**good, "counts": np.full((4, 5, 64), np.nan)}, True),
        "cube-strings": _npz_bytes({"counts": np.full((4, 5, 64), "a")}, False),
        "cube-timedelta": _npz_bytes({"counts": cube.astype("m8[s]")}, False),
        "cube-2d": _npz_bytes({"counts": cube.reshape(20, 64)}, False),
        "cube-empty": _npz_bytes({"counts": np.zeros((0, 5, 64))}, False),
        "no-members": _npz_bytes({}, False),
        "method-99": _zip_set_method(plain, 99),
        "method-lzma-claim": _zip_set_method(plain, 14),
        "declared-size-huge": _zip_set_sizes(comp, 2**32 - 1),
    }
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("counts.npy", b"this is not an npy file")
        z.writestr("gain_keV.npy", b"\x93NUMPY garbage")
    edits["non-array-member"] = bio.getvalue()
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("counts.npy", _npy_header("(1000000000, 1000000000, 1000000000)"))
    edits["member-header-overflow"] = bio.getvalue()
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("counts.npy", _npy_header("(4000, 4000, 4096)", descr="'|u1'") + b"\0" * (1 << 20))
    edits["member-short"] = bio.getvalue()
    for tag, data in edits.items():
        p = m.path("cube.npz")
        p.write_bytes(data)
        m.add(f"npz/{tag}", "scan", p, must_fail=tag == "member-short")


def _rpl_text(values: dict[str, Any]) -> bytes:
    return "".join(f"{k}\t{v}\n" for k, v in values.items()).encode("latin-1")


def _rpl_cases(m: _Maker, scale: int) -> None:
    cube = _cube((4, 5, 64))
    raw = cube.astype("<u2").tobytes()
    base = {"key": "value", "width": 5, "height": 4, "depth": 64, "offset": 0, "data-length": 2,
            "data-type": "unsigned", "byte-order": "little-endian", "record-by": "vector",
            "depthscaleorigin": -0.95, "depthscaleincrement": 0.02}
    rpl = _rpl_text(base)

    def pair(tag: str, header: bytes, data: bytes, must_fail=False) -> None:
        p = m.path("scan.rpl")
        p.write_bytes(header)
        p.with_suffix(".raw").write_bytes(data)
        m.add(f"rpl/{tag}", "scan", p, inputs=[p, p.with_suffix(".raw")], must_fail=must_fail)

    p = m.path("scan.rpl")
    p.write_bytes(rpl)
    p.with_suffix(".raw").write_bytes(raw)
    m.add("rpl/valid", "scan", p, inputs=[p, p.with_suffix(".raw")], control=True)
    for cut in m.cuts(raw, 4 * scale):
        pair(f"raw-cut{cut}", rpl, raw[:cut], must_fail=True)
    pair("raw-longer", rpl, raw + b"\0" * 10)
    for cut in m.cuts(rpl, 2 * scale):
        pair(f"rpl-cut{cut}", rpl[:cut], raw)
    for key in ("width", "height", "depth", "offset", "data-length"):
        for bad in _BAD_NUMBERS[: 6 + 2 * scale]:
            pair(f"{key}={bad}", _rpl_text({**base, key: bad}), raw)
    for key in ("depthscaleorigin", "depthscaleincrement"):
        for bad in ("abc", "inf", "nan", "1e400", "-0.01", "0", ""):
            pair(f"{key}={bad}", _rpl_text({**base, key: bad}), raw)
    lispix = {k: v for k, v in base.items() if not k.startswith("depthscale")}
    for bad in ("abc", "inf", "nan", "1e400", "-10", "0", "20"):
        pair(f"ev-per-chan={bad}", _rpl_text({**lispix, "ev-per-chan": bad}), raw)
    for key, bad in (("data-type", "complex"), ("byte-order", "middle"), ("record-by", "diagonal"),
                     ("data-type", "float"), ("depthscaleunits", "furlong")):
        pair(f"{key}={bad}", _rpl_text({**base, key: bad}), raw)
    pair("negative-signed", _rpl_text({**base, "data-type": "signed"}), (-cube.astype("<i2")).tobytes())
    pair("float-nan", _rpl_text({**base, "data-type": "float", "data-length": 4}),
         np.full(cube.shape, np.nan, "<f4").tobytes())
    pair("huge-declared", _rpl_text({**base, "width": 100000, "height": 100000, "depth": 4096}), raw)
    pair("binary-header", bytes(range(256)) * 4, raw)
    pair("latin1-header", _rpl_text({**base, "comment": "caf\xe9"}), raw)
    for i in range(scale * 2):
        buf = bytearray(rpl)
        pos = int(m.rng.integers(0, len(buf)))
        buf[pos] ^= int(m.rng.integers(1, 256))
        pair(f"rpl-flip{i}", bytes(buf), raw)


_DET_LAYERS = base64.b64encode(zlib.compress(
    b'<DetLayers><Layer0 Atom="5" Thickness="0.008"/><Layer1 Atom="14" Thickness="0.45"/></DetLayers>')).decode()


def _spx_bytes(counts, cal_abs="-0.95", cal_lin="0.02", count=None, channels=None) -> bytes:  # noqa: ANN001
    chans = channels if channels is not None else ",".join(str(int(v)) for v in counts)
    n = len(counts) if count is None else count
    xml = f"""<?xml version="1.0" encoding="WINDOWS-1252" standalone="yes"?>
<TRTSpectrum>
<RTHeader/>
<ClassInstance Type="TRTSpectrum" Name="spot 1">
<TRTHeaderedClass>
<ClassInstance Type="TRTSpectrumHardwareHeader">
<RealTime>10000</RealTime>
<LifeTime>9500</LifeTime>
<DeadTime>5</DeadTime>
<ZeroPeakPosition>95</ZeroPeakPosition>
<ZeroPeakFrequency>800</ZeroPeakFrequency>
<PulseDensity>70000</PulseDensity>
<Amplification>40000</Amplification>
<ShapingTime>130000</ShapingTime>
</ClassInstance>
<ClassInstance Type="TRTDetectorHeader">
<Type>XFlash 6|30</Type>
<DetectorThickness>0.45</DetectorThickness>
<SiDeadLayerThickness>0.029</SiDeadLayerThickness>
<DetLayers>{_DET_LAYERS}</DetLayers>
</ClassInstance>
<ClassInstance Type="TRTXrfHeader">
<Voltage>50</Voltage>
<Current>600</Current>
<ExcitationAngle>50</ExcitationAngle>
<Anode>42</Anode>
</ClassInstance>
</TRTHeaderedClass>
<ClassInstance Type="TRTSpectrumHeader">
<Date>24.11.2026</Date>
<Time>12:30:00</Time>
<ChannelCount>{n}</ChannelCount>
<CalibAbs>{cal_abs}</CalibAbs>
<CalibLin>{cal_lin}</CalibLin>
<SigmaAbs>0.0005</SigmaAbs>
<SigmaLin>0.0003</SigmaLin>
</ClassInstance>
<Channels>{chans}</Channels>
</ClassInstance>
</TRTSpectrum>
"""
    return xml.encode("cp1252")


def _bruker_cases(m: _Maker, scale: int) -> None:
    counts = _cube((1, 1, 256))[0, 0]
    good = _spx_bytes(counts)
    end = good.rindex(b"</Channels>")
    m.bytes_variants("scan", "spot.spx", good, "spx", n_cut=3 * scale, n_flip=3 * scale,
                     fail_cut=lambda cut: cut < end + 5)
    for bad in ("abc", "inf", "nan", "1e400", "-0.02", "0", "", "0,02"):
        p = m.path("spot.spx")
        p.write_bytes(_spx_bytes(counts, cal_lin=bad))
        m.add(f"spx/CalibLin={bad}", "scan", p)
    for bad in ("abc", "inf", "1e400"):
        p = m.path("spot.spx")
        p.write_bytes(_spx_bytes(counts, cal_abs=bad))
        m.add(f"spx/CalibAbs={bad}", "scan", p)
    neg = ",".join(str(int(v)) for v in counts[:-3]) + ",-5,-1,-300"
    for tag, chans, n in (("negative", neg, None), ("floats", ",".join("1.5" for _ in counts), None),
                          ("words", ",".join("x" for _ in counts), None), ("empty", "", None),
                          ("count-more", None, 100000), ("count-less", None, 10), ("count-negative", None, -3),
                          ("huge-values", ",".join("99999999999999999999999" for _ in counts), None),
                          ("one", "5", None)):
        p = m.path("spot.spx")
        p.write_bytes(_spx_bytes(counts, count=n, channels=chans))
        m.add(f"spx/channels-{tag}", "scan", p, must_fail=tag == "count-more")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
              b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
              b'<TRTSpectrum>&d;&d;&d;&d;&d;&d;&d;&d;&d;</TRTSpectrum>')
    p = m.path("spot.spx")
    p.write_bytes(laughs)
    m.add("spx/entities", "scan", p)
    # Bruker SFS containers (.bcf): no valid hypermap can be produced here, so the container
    # header and its tables are hostile variants of the signature the reader sniffs.
    sfs = bytearray(b"AAMVHFSS" + b"\0" * 504)
    rng = m.rng
    for i in range(4 * scale):
        buf = bytearray(sfs)
        n = int(rng.integers(16, 400))
        buf[8:8 + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        body = rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes()
        p = m.path("map.bcf")
        p.write_bytes(bytes(buf) + body)
        m.add(f"bcf/random{i}", "scan", p)
    for tag, (chunk, tree_addr, n_items) in {"chunk0": (0, 1, 1), "chunk-huge": (2**31, 1, 1),
                                             "tree-beyond": (4096, 10**6, 3), "items-huge": (512, 1, 2**31),
                                             "plausible": (512, 1, 2)}.items():
        head = bytearray(b"AAMVHFSS" + b"\0" * 504)
        struct.pack_into("<4x f I I I", head, 0x124 - 8 if 0x124 > 8 else 0, 2.6, chunk, tree_addr, n_items)
        p = m.path("map.bcf")
        p.write_bytes(bytes(head) + b"\0" * 2048)
        m.add(f"bcf/{tag}", "scan", p)
    p = m.path("map.spx")
    p.write_bytes(b"AAMVHFSS" + b"\0" * 600)
    m.add("bcf/renamed-spx", "scan", p)
    # sound SFS containers (rosettasciio's container layout) with hostile content, cut and flipped
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
    from xrfio_fixtures import write_sfs

    tmp = m.path("src.bcf")
    header = (b"<?xml version='1.0'?><TRTBase><ClassInstance Type='TRTSpectrumDatabase' Name='map'><Header>"
              b"<FileVersion>3</FileVersion></Header><ChCount>256</ChCount></ClassInstance></TRTBase>")
    container = write_sfs(tmp, {"EDSDatabase/HeaderData": header,
                                "EDSDatabase/SpectrumData0": m.rng.integers(0, 256, 20000, dtype=np.uint8).tobytes()}
                          ).read_bytes()
    m.bytes_variants("scan", "map.bcf", container, "sfs", n_cut=6 * scale, n_flip=6 * scale, flip_region=0x160,
                     fail_cut=lambda cut: cut < len(container) - 4096, control=False)


def _spec_mca(calib="0 0.02 0", chann="64 0 63 1", values=None) -> bytes:  # noqa: ANN001
    vals = values if values is not None else " ".join(str(int(v)) for v in _cube((1, 1, 64))[0, 0])
    return (f"#F spot.mca\n#E 1\n#D Mon Dec 01 2026\n\n#S 1 spot\n#N 1\n#@MCA %16C\n#@CHANN {chann}\n"
            f"#@CALIB {calib}\n#@CTIME 10 9.5 9.6\n@A {vals}\n").encode("latin-1")


def _spe_data_start(data: bytes) -> int:
    i = data.index(b"$DATA:")
    return data.index(b"\n", data.index(b"\n", i) + 1) + 1


def _spectra_cases(m: _Maker, scale: int) -> None:
    from PyMca5 import PyMcaDataDir

    d = Path(PyMcaDataDir.PYMCA_DATA_DIR)
    steel = (d / "Steel.spe").read_bytes()
    xrf = (d / "XRFSpectrum.mca").read_bytes()
    last = len(steel.rstrip())
    data0 = _spe_data_start(steel)
    m.bytes_variants("scan", "Steel.spe", steel, "spe", n_cut=8 * scale, n_flip=3 * scale,
                     fail_cut=lambda cut: cut < last)
    m.bytes_variants("scan", "XRFSpectrum.mca", xrf, "pymca-mca", n_cut=2 * scale, n_flip=2 * scale,
                     truncation_fails=False)
    text = steel.decode("latin-1")
    i = text.index("$DATA:")
    j = text.index("\n", text.index("\n", i) + 1)
    for bad in ("0 99999999", "0 -5", "abc def", "5 2", "0 2047 7", "", "0 1e400", "-10 2047"):
        p = m.path("Steel.spe")
        p.write_bytes((text[: i] + "$DATA:\n" + bad + text[j:]).encode("latin-1"))
        m.add(f"spe/data-header={bad}", "scan", p, must_fail=bad in ("0 99999999",))
    for tag, content in {"spec-id-only": b"$SPEC_ID:\n", "spec-id-bare": b"$SPEC_ID",
                         "spec-id-data": b"$SPEC_ID:\nx\n$DATA:\n", "data-only": b"$DATA:\n0 3\n1 2 3 4\n",
                         "mca-cal-garbage": text.replace("$DATA:", "$MCA_CAL:\n3\nabc def ghi\n$DATA:").encode("latin-1"),
                         "negative": (text[:data0] + " ".join(["-5"] * 2048) + "\n").encode("latin-1")}.items():
        p = m.path("x.spe")
        p.write_bytes(content)
        m.add(f"spe/{tag}", "scan", p)
    good = _spec_mca()
    m.bytes_variants("scan", "spot.mca", good, "specmca", n_cut=2 * scale, n_flip=2 * scale, truncation_fails=False)
    for calib in ("abc def ghi", "inf nan 0", "0 0 0", "0 -0.01 0", "1e400 1 1", "0"):
        p = m.path("spot.mca")
        p.write_bytes(_spec_mca(calib=calib))
        m.add(f"specmca/calib={calib}", "scan", p)
    for chann in ("99999999 0 99999998 1", "-5 0 1 1", "abc"):
        p = m.path("spot.mca")
        p.write_bytes(_spec_mca(chann=chann))
        m.add(f"specmca/chann={chann}", "scan", p)
    p = m.path("spot.mca")
    p.write_bytes(_spec_mca(values=" ".join(["-3"] * 64)))
    m.add("specmca/negative", "scan", p)
    p = m.path("col.mca")
    p.write_bytes(b"\n".join([b"-4"] * 64) + b"\n")
    m.add("mca/negative-column", "scan", p)
    for tag, content in {"nul": b"\0" * 100, "text": b"hello\nworld\n", "spec-f-only": b"#F x\n",
                         "spec-s-nodata": b"#S 1 x\n#@MCA %16C\n"}.items():
        p = m.path("odd.mca")
        p.write_bytes(content)
        m.add(f"mca/{tag}", "scan", p)


# -- labels -----------------------------------------------------------------------------------
def _label_doc() -> dict[str, Any]:
    return {"version": 1, "scan": "s.h5", "regions": [
        {"name": "a", "shape": "rectangle", "row0": 0, "col0": 0, "row1": 2, "col1": 3, "top": ["LW"], "bottom": []},
        {"name": "b", "shape": "polygon", "vertices": [[2, 0], [2, 4], [5, 0]], "top": ["VM"], "bottom": ["ZW"]},
        {"name": "c", "shape": "mask", "runs": [[5, 4, 7]], "top": [], "bottom": []},
        {"name": "d", "shape": "mask", "pixels": [[0, 7], [1, 7]], "top": ["PB"], "bottom": []}]}


def _label_cases(m: _Maker, scale: int) -> None:
    import h5py

    doc = _label_doc()
    good = json.dumps(doc, indent=1).encode()
    m.bytes_variants("labels", "labels.json", good, "json", n_cut=4 * scale, n_flip=4 * scale)

    def js(tag: str, text: str | bytes) -> None:
        p = m.path("labels.json")
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        m.add(f"json/{tag}", "labels", p)

    def region_edit(tag: str, i: int, **kv: Any) -> None:
        d = json.loads(good)
        d["regions"][i].update(kv)
        js(tag, json.dumps(d))

    raw_rect = good.decode()
    for key in ("row0", "col1"):
        for bad in ("1e400", "Infinity", "-Infinity", "NaN", '"abc"', "null", "true", "[1]", "{}", "2.5", "1" + "0" * 5000,
                    "-99999999999999999999999"):
            js(f"{key}={bad[:12]}", raw_rect.replace(f'"{key}": {doc["regions"][0][key]}', f'"{key}": {bad}', 1))
    for bad in ([["a", "b"], [1, 2], [3, 4]], [[float("nan"), 0], [1, 2], [3, 4]], [[1, 2, 3], [1, 2], [3, 4]],
                [[1e308, 1e308], [-1e308, 0], [0, 1e308]], [[0, 0]], "abc", {"a": 1}, [[1, 2]] * 3):
        d = json.loads(good)
        d["regions"][1]["vertices"] = bad
        js(f"vertices={str(bad)[:20]}", json.dumps(d))
    js("vertices-inf", raw_rect.replace("[\n     2,\n     0\n    ]", "[Infinity, 0]", 1))
    region_edit("runs-strings", 2, runs=[["a", 1, 2]])
    region_edit("runs-huge", 2, runs=[[0, 0, 10**30]])
    region_edit("runs-float", 2, runs=[[0.5, 0, 2]])
    region_edit("pixels-negative", 3, pixels=[[-1, -1]])
    region_edit("pixels-huge", 3, pixels=[[2**63, 0]])
    region_edit("top-dict", 0, top={"LW": 1})
    region_edit("top-ints", 0, top=[1, 2])
    region_edit("name-list", 0, name=[1, 2])
    region_edit("shape-int", 0, shape=7)
    region_edit("unknown-pigment", 0, top=["unobtainium"])
    js("root-list", "[1, 2, 3]")
    js("root-string", '"regions"')
    js("regions-object", '{"version": 1, "regions": {"a": 1}}')
    js("regions-of-lists", '{"version": 1, "regions": [[1, 2]]}')
    js("version-string", '{"version": "1", "regions": []}')
    js("version-inf", '{"version": Infinity, "regions": []}')
    js("deep-list", "[" * 100000 + "]" * 100000)
    js("deep-object", '{"version": 1, "regions": [' + '{"a":' * 50000 + "1" + "}" * 50000 + "]}")
    js("latin1", json.dumps(doc).replace('"a"', '"\u00e9"').encode("latin-1"))
    js("utf16", json.dumps(doc).encode("utf-16"))
    js("bom", b"\xef\xbb\xbf" + good)
    js("nul", b"\0" * 64)
    js("empty-regions", '{"version": 1, "regions": []}')
    js("dup-keys", '{"version": 1, "regions": [], "regions": 5}')

    csv_good = b"x0,y0,x1,y1,top,bottom,name\n0,0,3,2,LW,,a\n4,2,8,4,VM;ZW,,b\n"

    def csv_case(tag: str, data: bytes) -> None:
        p = m.path("labels.csv")
        p.write_bytes(data)
        m.add(f"csv/{tag}", "labels", p)

    m.bytes_variants("labels", "labels.csv", csv_good, "csv", n_cut=2 * scale, n_flip=3 * scale, truncation_fails=False)
    for bad in ("inf", "-inf", "nan", "1e400", "abc", "", "2.5", "1" + "0" * 5000, "0x3"):
        csv_case(f"x1={bad[:10]}", f"x0,y0,x1,y1,top,bottom\n0,0,{bad},2,LW,\n".encode())
    csv_case("latin1", b"x0,y0,x1,y1,top,bottom,name\n0,0,3,2,LW,,caf\xe9\n")
    csv_case("nul", b"x0,y0,x1,y1,top,bottom\n0,0,3,2,L\0W,\n")
    csv_case("huge-field", b'x0,y0,x1,y1,top,bottom\n0,0,3,2,"' + b"a" * 200000 + b'",\n')
    csv_case("unclosed-quote", b'x0,y0,x1,y1,top,bottom\n0,0,3,2,"LW,\n')
    csv_case("no-header-short", b"1,2\n")
    csv_case("utf16", "x0,y0,x1,y1,top,bottom\n0,0,3,2,LW,\n".encode("utf-16"))

    def dense(tag: str, build) -> None:  # noqa: ANN001
        p = m.path("labels.h5")
        with h5py.File(p, "w") as f:
            build(f)
        m.add(f"dense/{tag}", "labels", p)

    h, w = LABEL_SCAN_SHAPE
    lab = np.zeros((h, w, 2), np.uint8)
    lab[:3, :, 0] = 1

    def good_dense(f, labels=lab, names=np.array([b"LW", b"VM"]), mask=None):  # noqa: ANN001, ANN202
        if labels is not None:
            f.create_dataset("labels", data=labels) if not isinstance(labels, str) else f.create_group("labels")
        if names is not None:
            f.create_dataset("label_names", data=names) if not isinstance(names, str) else f.create_group("label_names")
        if mask is not None:
            f.create_dataset("mask", data=mask)

    dense_bytes = _h5_bytes(good_dense)
    m.bytes_variants("labels", "labels.h5", dense_bytes, "dense", n_cut=2 * scale, n_flip=3 * scale, flip_region=2048)
    dense("labels-strings", lambda f: good_dense(f, labels=np.full((h, w, 2), b"x")))
    dense("labels-group", lambda f: good_dense(f, labels="group"))
    dense("names-group", lambda f: good_dense(f, names="group"))
    dense("names-ints", lambda f: good_dense(f, names=np.array([1, 2])))
    dense("names-2d", lambda f: good_dense(f, names=np.array([[b"LW", b"VM"]])))
    dense("names-scalar", lambda f: good_dense(f, names=np.bytes_(b"LW")))
    dense("names-bad-utf8", lambda f: good_dense(f, names=np.array([b"\xff\xfe", b"VM"])))
    dense("labels-2d", lambda f: good_dense(f, labels=np.zeros((h, w), np.uint8), names=np.array([b"LW"])))
    dense("labels-float-nan", lambda f: good_dense(f, labels=np.full((h, w, 2), np.nan)))
    dense("labels-negative", lambda f: good_dense(f, labels=-np.ones((h, w, 2), np.int8)))
    dense("labels-compound", lambda f: f.create_dataset("labels", shape=(h, w, 2), dtype=[("a", "u1")])
          and f.create_dataset("label_names", data=np.array([b"LW", b"VM"])))
    dense("mask-strings", lambda f: good_dense(f, mask=np.full((h, w), b"y")))
    dense("mask-3d", lambda f: good_dense(f, mask=np.ones((h, w, 2), bool)))
    dense("mask-group", lambda f: (good_dense(f), f.create_group("mask")))
    dense("top-wrong-shape", lambda f: (good_dense(f), f.create_dataset("labels_top", data=np.ones((2, 2, 2), np.uint8))))
    dense("top-group", lambda f: (good_dense(f), f.create_group("labels_top")))
    dense("sparse-huge", lambda f: (f.create_dataset("labels", shape=(100000, 100000, 2), dtype="u1", chunks=(1, 1000, 2)),
                                    f.create_dataset("label_names", data=np.array([b"LW", b"VM"]))))
    dense("unknown-name", lambda f: good_dense(f, names=np.array([b"LW", b"unobtainium"])))


# -- models -----------------------------------------------------------------------------------
def _rezip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return bio.getvalue()


def _model_cases(m: _Maker, model: Path, scale: int, *, big_config_mb: int) -> None:
    data = model.read_bytes()
    with zipfile.ZipFile(model) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["xrf_metadata.json"])
    m.bytes_variants("model", "m.keras", data, "keras", n_cut=3 * scale, n_flip=3 * scale)

    def case(tag: str, blob: bytes) -> None:
        p = m.path("m.keras")
        p.write_bytes(blob)
        m.add(f"keras/{tag}", "model", p)

    def with_member(name: str, value: bytes) -> bytes:
        return _rezip({**members, name: value})

    case("config-list", with_member("config.json", b"[1, 2, 3]"))
    case("config-string", with_member("config.json", b'"x"'))
    case("config-bad-utf8", with_member("config.json", b'{"\xff": 1}'))
    case("config-deep", with_member("config.json", b'{"config": ' + b"[" * 100000 + b"]" * 100000 + b"}"))
    case("config-nan", with_member("config.json", b'{"class_name": NaN, "config": {"layers": Infinity}}'))
    case("meta-list", with_member("xrf_metadata.json", b"[1]"))
    case("meta-deep", with_member("xrf_metadata.json", b"[" * 100000 + b"]" * 100000))
    for key, value in (("metadata", "abc"), ("classes", "LW"), ("classes", [1, [2]]), ("class_names", None),
                       ("preprocess", "x"), ("preprocess", {"grid": {"start_kev": "abc"}}), ("format_version", "1"),
                       ("format_version", 1e400), ("metadata", {"lineage": float("nan")})):
        d = dict(meta)
        d[key] = value
        case(f"meta-{key}={str(value)[:16]}", with_member("xrf_metadata.json", json.dumps(d).encode()))
    d = dict(meta)
    d.pop("preprocess")
    case("meta-no-preprocess", with_member("xrf_metadata.json", json.dumps(d).encode()))
    case("method-99", _zip_set_method(data, 99))
    case("method-bzip2-claim", _zip_set_method(data, 12))
    case("declared-size-huge", _zip_set_sizes(data, 2**32 - 1))
    case("config-padded", with_member("config.json", members["config.json"] + b" " * (big_config_mb << 20)))
    cfg = json.loads(members["config.json"])
    cfg2 = json.loads(json.dumps(cfg))
    cfg2.setdefault("config", {}).setdefault("layers", []).append(
        {"class_name": "Lambda", "module": "keras.layers", "config": {"name": "evil", "function": "print"}})
    case("lambda-layer", with_member("config.json", json.dumps(cfg2).encode()))
    case("not-zip", b"PK\x05\x06" + b"\0" * 18)
    case("weights-missing", _rezip({k: v for k, v in members.items() if k != "model.weights.h5"}))


def make_cases(root: str | Path, *, seed: int = 0, scale: int = 1, model: str | Path | None = None,
               big_config_mb: int = 80, kinds: tuple[str, ...] = ("scan", "labels", "model")) -> list[dict[str, Any]]:
    """Write the hostile files under ``root`` and return the case list.

    Parameters
    ----------
    root : path
        Empty folder; one sub-folder per case.
    seed : int
        Seeds cut points and flipped bytes.
    scale : int
        Multiplies the number of truncations and flips per fixture (1: a few hundred cases).
    model : path, optional
        A valid ``.keras`` model file written by xrfcore; without it no model cases are made.
    big_config_mb : int
        Padding (MiB) of the "config.json padded" model case.
    kinds : tuple of str
        Which families to make.
    """
    m = _Maker(Path(root), seed)
    if "scan" in kinds:
        _hdf5_cases(m, scale)
        _npy_cases(m, scale)
        _npz_cases(m, scale)
        _rpl_cases(m, scale)
        _bruker_cases(m, scale)
        _spectra_cases(m, scale)
    if "labels" in kinds:
        _label_cases(m, scale)
    if "model" in kinds and model is not None:
        _model_cases(m, Path(model), scale, big_config_mb=big_config_mb)
    return m.cases


def copy_fixture(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` (helper for callers that add their own cases)."""
    shutil.copyfile(src, dst)
    return dst
