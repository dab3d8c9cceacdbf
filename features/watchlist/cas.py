"""CAS Registry Numbers: the check-digit rule, normalisation and extraction from free text.

A CAS number is ``NNNNNNN-NN-R``: two to seven digits, two digits, one check digit ``R``. The
check digit is the sum of the other digits, each multiplied by its position counted from the
right starting at 1, modulo 10 (reference §8). Numbers that fail the rule are typos or
fabrications and must never produce a watchlist hit.

Reading a declared number is :func:`features.canonical.read_cas`, the project's one definition
of which writings are the same number (leading zeros, no hyphens, spaces, other scripts' digits
and dashes); this module builds the watchlist's helpers on it.
"""

from __future__ import annotations

import re

from features.canonical import CasReading, canonical_name, cas_check_digit, read_cas

__all__ = [
    "cas_check_digit",
    "cas_problem",
    "find_cas",
    "invalid_cas_reason",
    "is_valid_cas",
    "normalize_cas",
]

_CAS_SHAPE = re.compile(r"^(\d{2,7})-(\d{2})-(\d)$")
# In free text the hyphens are required (a bare run of digits is an order number as often as a
# CAS); a single space either side of a hyphen is allowed, and leading zeros are dropped.
_CAS_IN_TEXT = re.compile(r"(?<![\d-])0*(\d{2,7}) ?- ?(\d{2}) ?- ?(\d)(?![\d-])")
_SHAPE_RULE = "NNNNNNN-NN-R, 2-7 digits first"


def cas_problem(value: str) -> str | None:
    """Why ``value`` is not a valid CAS number in canonical form, or ``None`` when it is.

    Strict on the writing: the watchlist file stores canonical numbers. To read a number as
    declared, in any equivalent writing, use :func:`normalize_cas` or
    :func:`features.canonical.read_cas`.
    """
    match = _CAS_SHAPE.match(value)
    if match is None:
        return f"{value!r} is not shaped like a CAS number ({_SHAPE_RULE})"
    head, mid, check = match.groups()
    expected = cas_check_digit(head + mid)
    if expected != int(check):
        return (
            f"{value} fails the CAS check digit: last digit is {check}, the rule gives {expected}"
        )
    return None


def is_valid_cas(value: str) -> bool:
    """Whether ``value`` is a valid CAS number in canonical form (see :func:`cas_problem`)."""
    return cas_problem(value) is None


def normalize_cas(value: str) -> str | None:
    """Canonical hyphenated form of a declared CAS number, or ``None`` if it is not valid.

    Every equivalent writing is accepted ("039742-60-4", "39742604", "39742 60 4", full-width or
    Arabic-Indic digits, any dash), but only when the check digit holds.
    """
    reading = read_cas(value)
    return reading.text if reading.valid else None


def invalid_cas_reason(reading: CasReading) -> str | None:
    """Why a declared number, as read by ``read_cas``, is not a CAS number; ``None`` if it is."""
    if reading.status == "valid":
        return None
    if reading.status == "check_digit":
        digits = reading.text.replace("-", "")
        expected = cas_check_digit(digits[:-1])
        return f"check digit is {digits[-1]}, the CAS rule gives {expected}"
    return f"not shaped like a CAS number ({_SHAPE_RULE})"


def find_cas(text: str) -> list[tuple[str, int, int]]:
    """Valid CAS numbers in ``text``: (canonical number, start, end); invalid ones are skipped.

    The search runs on ``canonical_name(text)`` so that other scripts' digits, odd dashes and
    invisible characters do not hide a number; the spans are offsets into that canonical text
    (the same text :func:`features.watchlist.text.tokenize` gives spans into).
    """
    canon = canonical_name(text)
    found = []
    for match in _CAS_IN_TEXT.finditer(canon):
        head, mid, check = match.groups()
        if cas_check_digit(head + mid) == int(check):
            found.append((f"{head}-{mid}-{check}", match.start(), match.end()))
    return found
