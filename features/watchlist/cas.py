"""CAS Registry Numbers: the check-digit rule, normalisation and extraction from free text.

A CAS number is ``NNNNNNN-NN-R``: two to seven digits, two digits, one check digit ``R``. The
check digit is the sum of the other digits, each multiplied by its position counted from the
right starting at 1, modulo 10 (reference §8). Numbers that fail the rule are typos or
fabrications and must never produce a watchlist hit.
"""

from __future__ import annotations

import re

_CAS_SHAPE = re.compile(r"^(\d{2,7})-(\d{2})-(\d)$")
_CAS_IN_TEXT = re.compile(r"(?<![\d-])(\d{2,7})-(\d{2})-(\d)(?![\d-])")
_DIGITS_ONLY = re.compile(r"^\d{5,10}$")


def cas_check_digit(body: str) -> int:
    """The check digit for ``body``, the CAS digits without the check digit (hyphens allowed)."""
    digits = body.replace("-", "")
    return sum(int(d) * pos for pos, d in enumerate(reversed(digits), start=1)) % 10


def cas_problem(value: str) -> str | None:
    """Why ``value`` is not a valid CAS number, or ``None`` when it is."""
    match = _CAS_SHAPE.match(value)
    if match is None:
        return f"{value!r} is not shaped like a CAS number (NNNNNNN-NN-R, 2-7 digits first)"
    head, mid, check = match.groups()
    expected = cas_check_digit(head + mid)
    if expected != int(check):
        return (
            f"{value} fails the CAS check digit: last digit is {check}, the rule gives {expected}"
        )
    return None


def is_valid_cas(value: str) -> bool:
    return cas_problem(value) is None


def normalize_cas(value: str) -> str | None:
    """Canonical hyphenated form of a declared CAS number, or ``None`` if it is not valid.

    Declarations carry CAS numbers with stray spaces or without hyphens ("39742604"); both are
    accepted, but only when the check digit holds.
    """
    text = value.strip().replace(" ", "")
    if _DIGITS_ONLY.match(text):
        text = f"{text[:-3]}-{text[-3:-1]}-{text[-1]}"
    return text if is_valid_cas(text) else None


def find_cas(text: str) -> list[tuple[str, int, int]]:
    """Valid CAS numbers in ``text`` with their character spans; invalid ones are skipped."""
    found = []
    for match in _CAS_IN_TEXT.finditer(text):
        head, mid, check = match.groups()
        if cas_check_digit(head + mid) == int(check):
            found.append((match.group(0), match.start(), match.end()))
    return found
