"""The import's fast path for plain addresses (audience.subscribers._plain_address) must give
exactly validate_email's answer: the same normal form, or a refusal (then the full check
runs and says why)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.audience import subscribers
from newsletter.audience.subscribers import normalise_address


def full_check(value: str) -> str | None:
    try:
        return subscribers._validated_address(value)
    except ValueError:
        return None


PIECES = st.sampled_from(["a", "Z", "0", ".", "..", "-", "_", "+", "'", "!", "~", "@", "é",
                          '"', " ", "\\", "(", "<", ">", "xn--", "ß", "١", "info", "ab" * 40,
                          "example", "org", "COM", "localhost", "test", "[127.0.0.1]"])
ADDRESSES = st.lists(PIECES, min_size=1, max_size=12).map("".join)


@settings(max_examples=3000, deadline=None)
@given(ADDRESSES)
def test_the_fast_path_agrees_with_validate_email_on_generated_addresses(value: str) -> None:
    fast = subscribers._plain_address(value)
    if fast is not None:  # taken: it must be exactly what validate_email says
        assert fast == full_check(value), value


@pytest.mark.parametrize("value", [
    "Reader.One+news@Example.ORG", "o'brien@example.ie", "x@sub.example.co.uk",
    "INFO@example.org", "Postmaster@Example.org", "a@example", "a@localhost", "a@x.test",
    "a@-bad.org", "a@bad-.org", "a..b@example.org", ".a@example.org", "a.@example.org",
    "a@例え.jp", "a@xn--r8jz45g.jp", "ü@example.org", '"a b"@example.org',
    "a@[192.0.2.1]", "a@123.456", "a@example.123", "a" * 64 + "@example.org",
    "a" * 65 + "@example.org", "a@" + "b" * 63 + ".org", "a@" + "b" * 64 + ".org",
    "a@" + ("b" * 60 + ".") * 4 + "org", "Name <a@example.org>", "a@example.org.",
])
def test_the_fast_path_agrees_with_validate_email_on_edge_cases(value: str) -> None:
    fast = subscribers._plain_address(value)
    assert fast is None or fast == full_check(value)
    try:
        got: str | None = normalise_address(value)
    except ValueError:
        got = None
    assert got == full_check(value)


def test_a_plain_address_takes_the_fast_path_and_role_names_do_not() -> None:
    assert subscribers._plain_address("Reader@Example.ORG") == "Reader@example.org"
    assert subscribers._plain_address("INFO@example.org") is None  # RFC 2142: lower-cased
    assert normalise_address("INFO@example.org") == "info@example.org"
