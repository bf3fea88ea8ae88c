"""Link tokens: bound to one address (or id) and one list, opaque, sealed, and rotatable."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.audience.tokens import (
    confirm_token_issued,
    make_confirm_token,
    make_token,
    verify_confirm_token,
    verify_token,
)

LIST_ID = "ip-for-business.ipbusiness.example.org"
SECRET = "s3cret-for-tests"
ADDRESS = "zoe.mueller@example.org"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def test_a_token_verifies_to_the_address_it_was_made_for():
    token = make_token(SECRET, LIST_ID, ADDRESS)

    assert verify_token([SECRET], LIST_ID, token) == ADDRESS


def test_a_token_is_url_safe():
    token = make_token(SECRET, LIST_ID, "o'brien+news/x@example.org")

    assert all(c.isalnum() or c in "-_." for c in token), token
    assert verify_token([SECRET], LIST_ID, token) == "o'brien+news/x@example.org"


def test_tokens_differ_per_address_and_per_list():
    tokens = {make_token(SECRET, LIST_ID, ADDRESS), make_token(SECRET, LIST_ID, "b@example.org"),
              make_token(SECRET, "other.example.org", ADDRESS)}

    assert len(tokens) == 3


def test_a_token_for_another_list_is_refused():
    token = make_token(SECRET, "other-list.example.org", ADDRESS)

    assert verify_token([SECRET], LIST_ID, token) is None


def test_a_token_with_a_tampered_mac_is_refused():
    token = make_token(SECRET, LIST_ID, ADDRESS)
    encoded, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]

    assert verify_token([SECRET], LIST_ID, f"{encoded}.{flipped}") is None
    assert verify_token([SECRET], LIST_ID, f"{encoded}.{mac[:-1]}") is None
    assert verify_token([SECRET], LIST_ID, f"{encoded}.") is None


def test_a_token_whose_address_was_swapped_is_refused():
    """Someone who has their own link must not be able to unsubscribe another address."""
    _, mac = make_token(SECRET, LIST_ID, "attacker@example.org").split(".")

    assert verify_token([SECRET], LIST_ID, f"{_b64(ADDRESS)}.{mac}") is None


def test_a_token_signed_with_an_unknown_secret_is_refused():
    token = make_token("some-other-secret", LIST_ID, ADDRESS)

    assert verify_token([SECRET], LIST_ID, token) is None


def test_no_secrets_means_no_token_verifies():
    assert verify_token([], LIST_ID, make_token(SECRET, LIST_ID, ADDRESS)) is None


@pytest.mark.parametrize("garbage", [
    "",
    ".",
    "..",
    "no-dot-at-all",
    "!!!.???",
    "%00.%00",
    "\x00.\x00",
    "not base64 at all.abc",
    "/w.abc",  # base64 of the byte 0xff: not UTF-8
    "é.é",
    _b64(ADDRESS) + ".é",  # non-ASCII MAC: hmac.compare_digest would raise TypeError
    _b64(ADDRESS) + ".\udcff",
    "a" * 10_000,
])
def test_garbage_is_refused_without_an_exception(garbage):
    assert verify_token([SECRET], LIST_ID, garbage) is None


def test_rotation_accepts_tokens_signed_with_the_new_or_the_old_secret():
    new, old = "new-secret", "old-secret"
    by_new = make_token(new, LIST_ID, ADDRESS)
    by_old = make_token(old, LIST_ID, ADDRESS)

    assert verify_token([new, old], LIST_ID, by_new) == ADDRESS
    assert verify_token([new, old], LIST_ID, by_old) == ADDRESS
    # Once the old secret is retired, its links stop working.
    assert verify_token([new], LIST_ID, by_old) is None


# --- what a link reveals -------------------------------------------------------------------


def _legacy_token(secret: str, list_id: str, email: str) -> str:
    """A version 1 unsubscribe token, as messages sent before version 2 carry it."""
    message = f"unsubscribe\0{list_id}\0{email.lower()}".encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:18]
    return f"{_b64(email)}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _legacy_confirm_token(secret: str, list_id: str, email: str, stamp: int) -> str:
    message = f"confirm\0{list_id}\0{email.lower()}\0{stamp}".encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:18]
    return f"{_b64(email)}.{stamp}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _reveals(token: str, address: str) -> bool:
    """Whether the address, or any 4-character piece of it, reads back from the token as
    text or through base64 decoding at any offset."""
    lowered = token.lower()
    if any(address.lower()[i:i + 4] in lowered for i in range(len(address) - 3)):
        return True
    for part in token.split("."):
        for offset in range(4):
            chunk = part[offset:]
            try:
                decoded = base64.urlsafe_b64decode(chunk + "=" * (-len(chunk) % 4))
            except ValueError:
                continue
            if any(address.encode()[i:i + 4] in decoded for i in range(len(address) - 3)):
                return True
    return False


def test_a_new_unsubscribe_token_carries_no_part_of_the_address():
    for address in (ADDRESS, "bob@example.org", "anna.very.long.name+news@example.com"):
        token = make_token(SECRET, LIST_ID, address)

        assert not _reveals(token, address), token
        assert _reveals(_legacy_token(SECRET, LIST_ID, address), address)  # the check works


def test_a_new_token_is_deterministic_short_and_versioned():
    token = make_token(SECRET, LIST_ID, ADDRESS)

    assert token == make_token(SECRET, LIST_ID, ADDRESS)  # the same link in every issue
    assert token.startswith("v2") and len(token) <= 80
    # the address length is padded to a multiple of 8 octets: a or aaaa@x.org look alike
    assert len(make_token(SECRET, LIST_ID, "a@example.org")) == \
        len(make_token(SECRET, LIST_ID, "abcd@example.org"))


def test_a_legacy_unsubscribe_token_from_a_sent_message_still_verifies():
    legacy = _legacy_token(SECRET, LIST_ID, ADDRESS)

    assert verify_token([SECRET], LIST_ID, legacy) == ADDRESS
    assert verify_token(["new-secret", SECRET], LIST_ID, legacy) == ADDRESS
    assert verify_token([SECRET], "other.example.org", legacy) is None


def test_a_sealed_token_cannot_be_altered_or_reused_for_another_purpose():
    token = make_token(SECRET, LIST_ID, ADDRESS)
    data, tag = token.split(".")
    for index in range(2, len(data)):
        swapped = "A" if data[index] != "A" else "B"
        assert verify_token([SECRET], LIST_ID, f"{data[:index]}{swapped}{data[index + 1:]}.{tag}") \
            is None
    assert verify_token([SECRET], LIST_ID, f"{data}.{tag}!") is None  # not base64url
    assert verify_token([SECRET], LIST_ID, f"v2.{tag}") is None
    now = datetime.now(UTC)
    confirm = make_confirm_token(SECRET, LIST_ID, ADDRESS, now)
    assert verify_token([SECRET], LIST_ID, confirm) is None
    stamp = confirm.split(".")[1]
    assert verify_confirm_token([SECRET], LIST_ID, f"{data}.{stamp}.{tag}", now, 3600) is None


def test_a_confirm_token_hides_the_address_and_keeps_its_issue_time():
    issued = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    token = make_confirm_token(SECRET, LIST_ID, ADDRESS, issued)

    assert not _reveals(token, ADDRESS), token
    assert confirm_token_issued(token) == issued
    assert verify_confirm_token([SECRET], LIST_ID, token, issued + timedelta(hours=1),
                                86400) == ADDRESS
    assert verify_confirm_token([SECRET], LIST_ID, token, issued + timedelta(days=2),
                                86400) is None
    forged_time = token.replace(str(int(issued.timestamp())), str(int(issued.timestamp()) + 9))
    assert verify_confirm_token([SECRET], LIST_ID, forged_time, issued + timedelta(hours=1),
                                86400) is None


def test_a_legacy_confirm_token_verifies_within_its_age():
    issued = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    token = _legacy_confirm_token(SECRET, LIST_ID, ADDRESS, int(issued.timestamp()))

    assert verify_confirm_token([SECRET], LIST_ID, token, issued + timedelta(hours=1),
                                86400) == ADDRESS
    assert confirm_token_issued(token) == issued


def test_rotation_works_for_confirm_tokens_too():
    issued = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    token = make_confirm_token("old-secret", LIST_ID, ADDRESS, issued)
    later = issued + timedelta(minutes=5)

    assert verify_confirm_token(["new-secret", "old-secret"], LIST_ID, token, later, 600) \
        == ADDRESS
    assert verify_confirm_token(["new-secret"], LIST_ID, token, later, 600) is None


# --- id tokens (VERP envelope senders) ----------------------------------------------------


def test_an_id_token_is_short_lower_case_base32_and_round_trips():
    from newsletter.audience.tokens import make_id_token, verify_id_token

    for subscriber_id in (0, 1, 42, 2**31, 2**64 - 1):
        token = make_id_token(SECRET, LIST_ID, subscriber_id)
        assert len(token) <= 32 and token == token.lower()
        assert set(token) <= set("abcdefghijklmnopqrstuvwxyz234567"), token
        assert verify_id_token([SECRET], LIST_ID, token) == subscriber_id
        assert verify_id_token([SECRET], LIST_ID, token.upper()) == subscriber_id


def test_an_id_token_hides_the_id_and_is_deterministic():
    from newsletter.audience.tokens import make_id_token

    tokens = [make_id_token(SECRET, LIST_ID, n) for n in range(1, 200)]
    assert len(set(tokens)) == len(tokens)
    assert make_id_token(SECRET, LIST_ID, 7) == make_id_token(SECRET, LIST_ID, 7)
    # neighbouring ids share no visible structure: no common suffix or prefix beyond chance
    assert tokens[0][-8:] != tokens[1][-8:] and tokens[0][:8] != tokens[1][:8]


def test_an_id_token_is_refused_for_another_list_secret_or_after_tampering():
    from newsletter.audience.tokens import make_id_token, verify_id_token

    token = make_id_token(SECRET, LIST_ID, 42)
    assert verify_id_token([SECRET], "other.example.org", token) is None
    assert verify_id_token(["another-secret"], LIST_ID, token) is None
    assert verify_id_token([], LIST_ID, token) is None
    for index in range(len(token)):
        swapped = "a" if token[index] != "a" else "b"
        assert verify_id_token([SECRET], LIST_ID, token[:index] + swapped + token[index + 1:]) \
            is None
    for garbage in ("", token[:-1], token + "a", "1" * 32, "é" * 32, token[:-1] + "="):
        assert verify_id_token([SECRET], LIST_ID, garbage) is None


def test_an_id_token_made_with_the_previous_secret_verifies_during_rotation():
    from newsletter.audience.tokens import make_id_token, verify_id_token

    token = make_id_token("old-secret", LIST_ID, 9)
    assert verify_id_token([SECRET, "old-secret"], LIST_ID, token) == 9
    assert verify_id_token([SECRET], LIST_ID, token) is None


def test_an_out_of_range_id_is_refused():
    from newsletter.audience.tokens import make_id_token

    with pytest.raises(ValueError):
        make_id_token(SECRET, LIST_ID, -1)
    with pytest.raises(ValueError):
        make_id_token(SECRET, LIST_ID, 2**64)


def test_a_token_has_one_spelling_only():
    from newsletter.audience.tokens import make_token, verify_token

    token = make_token("s", "list.example.org", "ann@example.org")
    assert verify_token(["s"], "list.example.org", token) == "ann@example.org"
    data, tag = token.rsplit(".", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    others = [tag[:-1] + c for c in alphabet if c != tag[-1]]
    # a different last character either decodes to other bytes or sets unused padding bits:
    # both must fail, so no two strings are the same token
    assert not any(verify_token(["s"], "list.example.org", f"{data}.{t}") for t in others)
