"""``python -m fnbox.cli``."""

from __future__ import annotations

from fnbox.cli.main import main

raise SystemExit(main())
