"""How deep the markup handed to nh3 is nested: html5ever builds its tree in time quadratic in
nesting (100,000 levels took 36 s), so the sanitizer must never hand it deep markup. Measured
by a pass-through spy on nh3.clean, not by a clock (speed is the bench's)."""

from __future__ import annotations

import re
from typing import Any

import pytest

_TAG = re.compile(r"<(/?)[A-Za-z][^>]*?(/?)>")


def deepest(markup: str) -> int:
    depth = most = 0
    for tag in _TAG.finditer(markup):
        if tag.group(1):
            depth = max(0, depth - 1)
        elif not tag.group(2):
            depth += 1
            most = max(most, depth)
    return most


def nh3_depths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The nesting depth of every fragment newsletter.sanitize hands to nh3.clean from now."""
    import newsletter.sanitize as sanitize

    real, seen = sanitize.nh3.clean, []

    def clean(html: str, *args: Any, **kwargs: Any) -> str:
        seen.append(deepest(html))
        return real(html, *args, **kwargs)

    monkeypatch.setattr(sanitize.nh3, "clean", clean)
    return seen
