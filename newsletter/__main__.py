"""Entry point for `python -m newsletter`."""

from newsletter.cli.main import main

if __name__ == "__main__":  # importing this module (a test walking the package) runs nothing
    raise SystemExit(main())
