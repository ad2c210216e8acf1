"""Uploaded files -> scans to open: copy to disk, unpack ``.zip``, pair ``.rpl`` + ``.raw`` by stem.

A browser upload arrives as (name, byte stream) pairs. :func:`stage_uploads` copies them (in
chunks, never whole into memory) into one folder per upload set, named by the content hash, so
the same files are stored once and a set never mixes with another. Files keep the user's own
names (made safe: no folders, no odd characters), so a reader's message names the user's file.
:func:`public_message` removes the server folder from any message shown to the user.

Examples
--------
>>> import io, tempfile
>>> d = tempfile.mkdtemp()
>>> staged = stage_uploads([("scan.RPL", io.BytesIO(b"width 1")), ("scan.raw", io.BytesIO(b"1"))], d)
>>> [s.label for s in staged.scans], staged.problems
(['scan.RPL + scan.raw'], [])
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

__all__ = ["StagedScan", "StagedUploads", "stage_uploads", "safe_name", "public_message"]

_CHUNK = 8 << 20
_SAFE = re.compile(r"[^A-Za-z0-9._ +()-]")
#: Names inside a zip that are never scan data (macOS resource forks, desktop files).
_JUNK = re.compile(r"(^|/)(__MACOSX/|\._|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)


@dataclass(frozen=True)
class StagedScan:
    """One scan among the uploaded files.

    Attributes
    ----------
    path : Path
        The file to open (for a ``.rpl`` + ``.raw`` pair, the ``.rpl``).
    label : str
        The user's own file name(s), e.g. ``"scan.rpl + scan.raw"``.
    """

    path: Path
    label: str


@dataclass
class StagedUploads:
    """Result of :func:`stage_uploads`: the scans found and what could not be used, in words."""

    folder: Path
    scans: list[StagedScan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def safe_name(name: str) -> str:
    """A browser- or zip-supplied file name reduced to a plain name in one folder.

    Drops any folder part (``../``, ``C:\\``), replaces characters other than letters, digits and
    ``._ +()-`` with ``_`` and strips leading dots, so the name can never leave its folder.

    Examples
    --------
    >>> safe_name("../../etc/pass wd.rpl"), safe_name("C:\\\\scans\\\\a;b.raw"), safe_name("..")
    ('pass wd.rpl', 'a_b.raw', 'upload')
    """
    base = re.split(r"[\\/]", str(name))[-1]
    base = _SAFE.sub("_", base).lstrip(". ").strip()
    return base or "upload"


def public_message(text: str, folders: Iterable[str | os.PathLike]) -> str:
    """``text`` with every occurrence of the given server folders removed (paths -> file names)."""
    out = str(text)
    for folder in folders:
        f = str(folder).rstrip("/\\")
        if f:
            out = out.replace(f + os.sep, "").replace(f, "")
    return out


def stage_uploads(
    files: Iterable[tuple[str, BinaryIO]],
    dest_dir: str | os.PathLike,
    *,
    suffixes: Iterable[str] | None = None,
    max_bytes: int = 64 << 30,
) -> StagedUploads:
    """Copy uploaded files to ``dest_dir/<hash>/`` and say which scans they hold.

    Parameters
    ----------
    files : iterable of (name, binary stream)
        The user's file name and its content (read from the current position, in 8 MB chunks).
        A ``.zip`` is unpacked (its folders ignored, macOS ``__MACOSX`` entries skipped).
    dest_dir : path
        Parent folder; each upload set gets a subfolder named by the hash of names and contents.
    suffixes : iterable of str, optional
        Scan suffixes that can be opened (default: :func:`xrfcore.io.supported_suffixes`).
    max_bytes : int
        Largest total size (bytes) written for one upload set, zip contents included.

    Returns
    -------
    StagedUploads
        ``scans``: one entry per scan (a ``.rpl`` with its ``.raw`` is one scan); ``problems``:
        sentences naming the user's files (a ``.rpl`` without its ``.raw``, an unknown suffix,
        a damaged zip), each with what to do.

    Notes
    -----
    Pairing is by stem, case-insensitively (``Scan.RPL`` + ``scan.raw``). When exactly one
    ``.rpl`` and one ``.raw`` are left unpaired they are paired anyway (the ``.raw`` is stored
    under the ``.rpl``'s stem), since an export renamed by hand is still one scan.
    """
    if suffixes is None:
        from xrfcore.io import supported_suffixes

        suffixes = supported_suffixes()
    known = {s.lower() for s in suffixes}
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest))
    problems: list[str] = []
    digest = hashlib.sha256()
    written: dict[str, str] = {}  # stored name -> the user's name
    budget = [max_bytes]
    try:
        for name, stream in files:
            if Path(str(name)).suffix.lower() == ".zip":
                _unpack_zip(name, stream, tmp, written, problems, digest, budget)
            else:
                _store(safe_name(name), str(name), stream, tmp, written, problems, digest, budget)
        folder = dest / digest.hexdigest()[:16]
        if folder.is_dir():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = StagedUploads(folder=folder, problems=problems)
    _pair(folder, written, known, result)
    return result


def _store(stored: str, shown: str, stream: BinaryIO, tmp: Path, written: dict[str, str], problems: list[str],
           digest: "hashlib._Hash", budget: list[int]) -> None:
    key = stored.lower()
    if any(k.lower() == key for k in written):
        problems.append(f"two files are named {shown!r}; only the first was used. Upload one of them.")
        return
    digest.update(stored.encode() + b"\0")
    with open(tmp / stored, "wb") as out:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise ValueError(f"the uploaded files are larger than the limit; {shown!r} did not fit. "
                                 "Put large scans in the server data folder instead.")
            digest.update(chunk)
            out.write(chunk)
    digest.update(b"\0")
    written[stored] = shown


def _unpack_zip(name: str, stream: BinaryIO, tmp: Path, written: dict[str, str], problems: list[str],
                digest: "hashlib._Hash", budget: list[int]) -> None:
    shown = safe_name(name)
    spool = tmp / f".{shown}.zip-part"
    with open(spool, "wb") as out:
        shutil.copyfileobj(stream, out, _CHUNK)
    try:
        with zipfile.ZipFile(spool) as z:
            members = [m for m in z.infolist() if not m.is_dir() and not _JUNK.search(m.filename)]
            if not members:
                problems.append(f"{shown} holds no files. Zip the scan's files themselves (e.g. scan.rpl and scan.raw).")
            for m in members:
                if m.flag_bits & 0x1:
                    problems.append(f"{m.filename} in {shown} is encrypted; unzip it and upload its files.")
                    continue
                if Path(m.filename).suffix.lower() == ".zip":
                    problems.append(f"{m.filename} in {shown} is a zip inside the zip; upload its files directly.")
                    continue
                with z.open(m) as src:
                    _store(safe_name(m.filename), f"{m.filename} (in {shown})", src, tmp, written, problems, digest,
                           budget)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, zipfile.LargeZipFile, OSError) as exc:
        problems.append(f"{shown} is not a readable zip file ({exc}); zip the files again or upload them directly.")
    finally:
        spool.unlink(missing_ok=True)


def _pair(folder: Path, written: dict[str, str], known: set[str], result: StagedUploads) -> None:
    by_suffix: dict[str, dict[str, str]] = {".rpl": {}, ".raw": {}}
    others: list[str] = []
    for stored in written:
        sfx = Path(stored).suffix.lower()
        if sfx in by_suffix:
            by_suffix[sfx][Path(stored).stem.lower()] = stored
        else:
            others.append(stored)
    rpls, raws = by_suffix[".rpl"], by_suffix[".raw"]
    lone_rpl = [s for s in rpls if s not in raws]
    lone_raw = [s for s in raws if s not in rpls]
    if len(lone_rpl) == 1 and len(lone_raw) == 1:
        rpl, raw = rpls[lone_rpl[0]], raws.pop(lone_raw[0])
        renamed = Path(rpl).stem + Path(raw).suffix
        os.replace(folder / raw, folder / renamed)
        written[renamed] = written.pop(raw)
        raws[lone_rpl[0]] = renamed
        lone_rpl, lone_raw = [], []
    for stem, rpl in sorted(rpls.items()):
        if stem in raws:
            result.scans.append(StagedScan(folder / rpl, f"{written[rpl]} + {written[raws[stem]]}"))
        else:
            result.problems.append(
                f"{written[rpl]} is the header of a .rpl + .raw pair; its data file {Path(rpl).stem}.raw was not "
                "uploaded. Upload both files together (select both in the file dialog) or a .zip holding both.")
    for stem in lone_raw:
        raw = raws[stem]
        result.problems.append(
            f"{written[raw]} is the data part of a .rpl + .raw pair and cannot be read without its header "
            f"{Path(raw).stem}.rpl. Upload both files together (select both) or a .zip holding both.")
    for stored in sorted(others):
        sfx = Path(stored).suffix.lower()
        if sfx in known:
            result.scans.append(StagedScan(folder / stored, written[stored]))
        else:
            result.problems.append(
                f"{written[stored]}: files ending in {sfx or '(no suffix)'!r} are not scans this app reads. "
                f"Supported: {', '.join(sorted(known))} (.raw together with its .rpl).")
