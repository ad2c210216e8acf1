"""Atomic file writes: results and models appear whole under their final name or not at all."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Union

from xrfcore.errors import ConfigError

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "file_lock", "remove_stale_temporaries",
           "refuse_overwriting_inputs"]

PathLike = Union[str, os.PathLike]
#: Temporaries of another machine (or of the old unnamed format) older than this are stale (s).
STALE_AFTER_S = 24 * 3600.0
# ".<stem>.<host>-<pid>.<random>.part<suffix>" (older versions: ".<stem>.<random>.part<suffix>")
_TMP_RE = re.compile(r"^\.(?P<stem>.+?)\.(?:(?P<host>[A-Za-z0-9_-]{1,32})-(?P<pid>[0-9]{1,10})\.)?[A-Za-z0-9_]{6,16}"
                     r"\.part(?:\.[^/]*)?$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: PathLike, *, stem: str | None = None) -> list[Path]:
    """Remove temporaries of :func:`atomic_path` in ``directory`` whose writer is gone.

    A temporary is stale when it names this machine and a process id that no longer runs
    (its writer was killed), or, for another machine's or an old unnamed temporary, when it
    was not modified for :data:`STALE_AFTER_S`. ``stem`` limits the clean-up to temporaries
    of one final name's stem. Returns the removed paths.
    """
    d = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(d.iterdir())
    except OSError:
        return removed
    host, now = _host(), time.time()
    for path in entries:
        m = _TMP_RE.match(path.name)
        if m is None or (stem is not None and m.group("stem") != stem):
            continue
        try:
            if m.group("pid") is not None and m.group("host") == host:
                stale = int(m.group("pid")) != os.getpid() and not _pid_alive(int(m.group("pid")))
            else:
                stale = now - path.lstat().st_mtime > STALE_AFTER_S
            if stale:
                if path.is_dir() and not path.is_symlink():
                    import shutil

                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def _as_paths(value: PathLike | Iterable[PathLike] | None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value if v is not None]


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return os.path.abspath(a) == os.path.abspath(b)


def refuse_overwriting_inputs(outputs: Mapping[str, PathLike | Iterable[PathLike] | None],
                              inputs: Mapping[str, PathLike | Iterable[PathLike] | None]) -> None:
    """Raise ConfigError if an output path is one of the input files.

    Parameters
    ----------
    outputs, inputs : mapping of option name -> path, list of paths or None
        E.g. ``{"--out": args.out}`` and ``{"the input scan": args.file, "--model": args.model}``.
        Paths are compared resolved (symbolic links followed) and, when both exist, with
        ``os.path.samefile`` (hard links).

    Raises
    ------
    ConfigError
        ``"--out S.h5 is the input scan; choose another name"``.
    """
    for out_name, out_value in outputs.items():
        for out in _as_paths(out_value):
            for in_name, in_value in inputs.items():
                for inp in _as_paths(in_value):
                    if _same_file(out, inp):
                        what = f"the {in_name} file" if in_name.startswith("-") else in_name
                        raise ConfigError(f"{out_name} {out} is {what}; choose another name (it would be overwritten)")


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; rename it over ``final_path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``final_path`` is left as it was. The temporary is named
    ``.<stem>.<host>-<pid>.<random>.part<suffix>``; one left by a writer that was killed
    (``kill -9``) is removed by the next ``atomic_path`` for the same name
    (:func:`remove_stale_temporaries`). The temporary name keeps the final suffix (or ``suffix``)
    so that libraries which choose a format by extension (Keras, h5py, PIL) still work.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "out.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "out.txt").read_text()
    'done'
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final.parent, stem=final.stem)  # left by a writer that was killed
    sfx = suffix if suffix is not None else "".join(final.suffixes[-1:])
    while True:
        tmp = final.parent / f".{final.stem}.{_host()}-{os.getpid()}.{secrets.token_hex(4)}.part{sfx}"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        break
    tmp.unlink()  # let the writer create it (some libraries refuse to overwrite)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file for {final}")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the ``with`` block.

    Serialises read-modify-write of shared files (the models index, job folders) between
    processes on one machine; the lock is released when the block ends, even on error.
    """
    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
