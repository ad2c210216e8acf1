"""The ``python -m xrfcore`` command group.

Each subcommand lives in its own module under :mod:`xrfcore.commands` and defines

* ``NAME`` (str): the subcommand name,
* ``HELP`` (str): one line for the command list,
* ``add_arguments(parser)``: its arguments (``parser.description`` comes from the module
  docstring, which includes one example invocation),
* ``run(args) -> int``: a short adapter: call the library, report, return an exit code.

Command modules import heavy libraries (TensorFlow, PyMca5, Dask) inside ``run`` so that
``--help`` is instant. Expected problems raise :class:`xrfcore.errors.XRFError`; the CLI
prints the message (no traceback) and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

import xrfcore.commands
from xrfcore.errors import XRFError

__all__ = ["main", "build_parser"]


def _command_modules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(xrfcore.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"xrfcore.commands.{info.name}"))
    return mods


def build_parser() -> argparse.ArgumentParser:
    from xrfcore import __version__

    parser = argparse.ArgumentParser(
        prog="python -m xrfcore",
        description="XRF Pigment Explorer: pigment maps from MA-XRF scans.",
    )
    parser.add_argument("--version", action="version", version=f"xrfcore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=mod.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 failure, 2 usage/input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except XRFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no partial output was left under the output name", file=sys.stderr)
        return 130
