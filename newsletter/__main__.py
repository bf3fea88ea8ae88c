"""Entry point for `python -m newsletter`."""

from newsletter.cli.main import main

raise SystemExit(main())
