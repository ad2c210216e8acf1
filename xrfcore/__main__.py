"""``python -m xrfcore``: the command-line interface."""

from xrfcore.cli import main

raise SystemExit(main())
