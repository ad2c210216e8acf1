"""Run a third-party parser where its crash or hang cannot take the caller with it.

rosettasciio's ``.bcf`` parser, PyMca's spec readers and HDF5's format probing can segfault,
loop forever or allocate without bound on damaged files. :func:`run_guarded` runs such a call
in a child process with a wall-clock timeout and an address-space limit; the result comes back
through a pipe. A crash, a hang or a memory blow-up in the child becomes a
:class:`~xrfcore.errors.ScanReadError` in the caller, which keeps running (the CLI, the app
server, a worker).

The child is forked when the caller has a single Python thread (the CLI, job workers: fast,
nothing to re-import) and started by a fork server otherwise (a web server's threads may hold
locks that a plain fork would copy in the locked state).

Settings (environment): ``XRF_READER_TIMEOUT_S`` (default 120 s) and ``XRF_READER_MEMORY_MB``
(default: :func:`memory_budget_bytes` plus 1 GiB of headroom for the parser itself).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from xrfcore.errors import ScanReadError, XRFError

__all__ = ["run_guarded", "memory_budget_bytes", "reader_timeout_s"]

_FORKSERVER_PRELOAD = ["numpy", "h5py", "xrfcore.io"]


def reader_timeout_s() -> float:
    """Seconds a guarded reader may run (``XRF_READER_TIMEOUT_S``, default 120)."""
    try:
        value = float(os.environ.get("XRF_READER_TIMEOUT_S", "120"))
    except ValueError:
        return 120.0
    return value if value > 0 else 120.0


def memory_budget_bytes() -> int:
    """Bytes a reader may allocate for data held in memory (a decoded ``.bcf``, an ``.npz`` member).

    Half of the physical memory, at most a quarter of this process's address-space limit
    (``RLIMIT_AS``) when one is set, and at most ``XRF_READER_MEMORY_MB`` when that is set.
    """
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        phys = 8 << 30
    budget = phys // 2
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
        budget = min(budget, soft // 4)
    env = os.environ.get("XRF_READER_MEMORY_MB")
    if env:
        try:
            budget = min(budget, int(float(env)) << 20)
        except (ValueError, OverflowError):
            pass
    return int(max(budget, 64 << 20))


def _address_space_in_use() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...], memory: int) -> None:
    try:
        import faulthandler

        faulthandler.disable()  # a crash here is reported by the parent, with the file's name
        if memory > 0:
            memory += _address_space_in_use()  # the limit is on top of what the parent had mapped
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = memory if hard in (resource.RLIM_INFINITY, -1) else min(memory, hard)
            if soft in (resource.RLIM_INFINITY, -1) or soft > limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        result = fn(*args)
        conn.send(("ok", result))
    except XRFError as exc:
        conn.send(("xrf", exc))
    except MemoryError:
        conn.send(("memory", ""))
    except BaseException as exc:  # noqa: BLE001 - a third-party parser failed: report, do not die
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        conn.send(("error", f"{type(exc).__name__}: {str(exc)[:300] or tb}"))
    finally:
        conn.close()
        os._exit(0)


def _context() -> Any:
    if threading.active_count() == 1 and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    ctx = mp.get_context("forkserver")
    try:
        ctx.set_forkserver_preload(_FORKSERVER_PRELOAD)
    except Exception:  # noqa: BLE001 - preload is an optimisation only
        pass
    return ctx


def run_guarded(fn: Callable[..., Any], *args: Any, path: str | os.PathLike, what: str,
                timeout_s: float | None = None, memory_bytes: int | None = None) -> Any:
    """Call ``fn(*args)`` in a child process and return its (picklable) result.

    Parameters
    ----------
    fn : callable
        A module-level function (picklable by reference).
    path : path-like
        The file being read (for messages).
    what : str
        The parser, for messages (e.g. ``"rosettasciio's .bcf reader"``).
    timeout_s : float, optional
        Default :func:`reader_timeout_s`.
    memory_bytes : int, optional
        Address-space limit of the child; default ``XRF_READER_MEMORY_MB`` or
        :func:`memory_budget_bytes` plus 1 GiB.

    Raises
    ------
    ScanReadError
        The child crashed (signal), ran out of memory, exceeded the timeout or raised.
        An :class:`~xrfcore.errors.XRFError` raised in the child is re-raised unchanged.
    """
    p = Path(path)
    timeout = reader_timeout_s() if timeout_s is None else float(timeout_s)
    if memory_bytes is None:
        env = os.environ.get("XRF_READER_MEMORY_MB")
        try:
            memory_bytes = int(float(env)) << 20 if env else memory_budget_bytes() + (1 << 30)
        except (ValueError, OverflowError):
            memory_bytes = memory_budget_bytes() + (1 << 30)
    if mp.current_process().daemon:  # a daemonic worker may not start processes: read unguarded
        try:
            return fn(*args)
        except XRFError:
            raise
        except Exception as exc:  # noqa: BLE001 - a third-party parser failed
            raise ScanReadError(f"{p}: {what} cannot read this file ({type(exc).__name__}: {str(exc)[:300]})") from exc
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, int(memory_bytes)), daemon=True)
    try:
        proc.start()
    except OSError as exc:
        recv.close()
        send.close()
        raise ScanReadError(f"{p}: cannot start a process to read the file safely ({exc})") from exc
    send.close()
    message = None
    try:
        if recv.poll(timeout):
            try:
                message = recv.recv()
            except (EOFError, OSError):
                message = None
        else:
            message = ("timeout", "")
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if message is None:
        code = proc.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        raise ScanReadError(
            f"{p}: {what} crashed on this file ({how}); the file is damaged or not a valid file of its "
            "format: copy it again from the scanner or export it in another format"
        )
    kind, value = message
    if kind == "ok":
        return value
    if kind == "xrf":
        raise value
    if kind == "timeout":
        raise ScanReadError(
            f"{p}: {what} did not finish within {timeout:g} s and was stopped; the file is damaged or "
            "far larger than it looks (set XRF_READER_TIMEOUT_S to allow more time)"
        )
    if kind == "memory":
        raise ScanReadError(
            f"{p}: {what} needed more memory than the limit of {memory_bytes / 2**30:.1f} GiB; the file "
            "is damaged or too large to read in memory: convert it to HDF5 on a larger machine"
        )
    raise ScanReadError(f"{p}: {what} cannot read this file ({value})")
