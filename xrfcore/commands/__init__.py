"""Subcommands of ``python -m xrfcore``; one module each (see :mod:`xrfcore.cli`)."""
