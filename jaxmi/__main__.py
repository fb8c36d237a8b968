"""``python -m jaxmi``: the command line (see :mod:`jaxmi.cli`)."""

from jaxmi.cli import main

raise SystemExit(main())
