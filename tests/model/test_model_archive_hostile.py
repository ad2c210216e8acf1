"""Malformed model archives are refused before Keras is imported, with the offending member or key.

The archives are built from the shipped default model's own members (a real ``.keras`` file),
so only the edited part is wrong.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from xrfcore.errors import ModelError
from xrfcore.model import load_model
from xrfcore.model.bundle import MAX_JSON_MEMBER_BYTES, default_model_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def members():
    with zipfile.ZipFile(default_model_path()) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(bio.getvalue())
    return path


def _write_edit(path: Path, members: dict[str, bytes], edit: dict[str, bytes]) -> Path:
    return _write(path, {**members, **edit})


def _meta(members, **changes) -> bytes:
    meta = json.loads(members["xrf_metadata.json"])
    meta.update(changes)
    return json.dumps(meta).encode()


@pytest.mark.parametrize("edit, match", [
    ({"config.json": b"[1, 2, 3]"}, "config.json must be a JSON object, got list"),
    ({"config.json": b'{"\xff": 1}'}, "config.json is not valid JSON"),
    ({"config.json": b"[" * 100000 + b"]" * 100000}, "config.json is nested too deeply"),
    ({"config.json": b'{"class_name": NaN, "config": {}}'}, "not a Keras Functional or Sequential model"),
    ({"xrf_metadata.json": b"[1]"}, "xrf_metadata.json must be a JSON object, got list"),
    ({"xrf_metadata.json": b'{"format_version": NaN}'}, "xrf_metadata.json is not valid JSON"),
])
def test_json_members(tmp_path, members, edit, match):
    with pytest.raises(ModelError, match=match):
        load_model(_write_edit(tmp_path / "m.keras", members, edit))


@pytest.mark.parametrize("key, value, match", [
    ("metadata", "abc", "'metadata' must be an object"), ("classes", "LW", "'classes' must be a non-empty list"),
    ("class_names", None, "'class_names' must be a non-empty list"), ("preprocess", "x", "'preprocess' must be"),
    ("format_version", "1", "metadata version '1'"), ("preprocess", {"grid": {"start_kev": "abc"}}, "'preprocess'")])
def test_metadata_values(tmp_path, members, key, value, match):
    with pytest.raises(ModelError, match=match):
        load_model(_write_edit(tmp_path / "m.keras", members, {"xrf_metadata.json": _meta(members, **{key: value})}))


def test_unknown_compression_and_padded_config(tmp_path, members):
    p = _write_edit(tmp_path / "m.keras", members, {})
    data = bytearray(p.read_bytes())
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = data.find(sig)
        while i >= 0:
            data[i + off:i + off + 2] = struct.pack("<H", 99)
            i = data.find(sig, i + 4)
    p.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="uses compression method 99"):
        load_model(p)
    padded = members["config.json"] + b" " * (MAX_JSON_MEMBER_BYTES + 1)
    with pytest.raises(ModelError, match=r"member 'config.json' declares \d+ bytes"):
        load_model(_write_edit(tmp_path / "big.keras", members, {"config.json": padded}))


def test_flipped_byte_in_the_weights_is_refused_by_crc(tmp_path, members):
    p = _write(tmp_path / "m.keras", members)
    data = bytearray(p.read_bytes())
    z = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = z.getinfo("model.weights.h5")
    pos = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    data[pos] ^= 0x55
    p.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"(corrupt \(CRC mismatch\)|not a readable \.keras model file)"):
        load_model(p)


def test_refusals_do_not_import_tensorflow(tmp_path, members):
    p = _write_edit(tmp_path / "m.keras", members, {"xrf_metadata.json": b"[1]"})
    code = ("import sys\nfrom xrfcore.model import load_model\ntry:\n    load_model(sys.argv[1])\n"
            "except Exception as e:\n    print(type(e).__name__)\nprint('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True).stdout.split()
    assert out == ["ModelError", "False", "False"]
