"""Identifier formats with real check digits, vectorised where they are made per shipment.

ISO 6346 container numbers, IMO ship numbers and UPU S10 postal item ids all carry check digits,
so a validator downstream can tell a well-formed simulated id from noise.
"""

from __future__ import annotations

import string

import numpy as np
import polars as pl

from training.simulate.types import IntArray

LETTERS = string.ascii_uppercase
ALNUM = string.ascii_uppercase + string.digits


def _iso6346_letter_values() -> dict[str, int]:
    """Letter values of ISO 6346: A=10 upwards, skipping multiples of 11."""
    values: dict[str, int] = {}
    value = 10
    for letter in LETTERS:
        if value % 11 == 0:
            value += 1
        values[letter] = value
        value += 1
    return values


ISO6346_VALUES = _iso6346_letter_values()


def container_ids(owner_codes: list[str], owner_index: IntArray, serials: IntArray) -> pl.Series:
    """ISO 6346 ids such as ``PMQU1234565`` for owner ``owner_codes[i]`` and 6-digit serials."""
    prefix_sum = np.array(
        [
            sum(ISO6346_VALUES[c] * (1 << p) for p, c in enumerate(code + "U"))
            for code in owner_codes
        ],
        dtype=np.int64,
    )
    total = prefix_sum[owner_index]
    rest = serials.astype(np.int64)
    for position in range(9, 3, -1):
        total = total + (rest % 10) * (1 << position)
        rest = rest // 10
    check = total % 11 % 10
    frame = pl.DataFrame(
        {
            "owner": pl.Series([c + "U" for c in owner_codes])[owner_index],
            "serial": serials.astype(np.int64),
            "check": check,
        }
    )
    return frame.select(
        pl.concat_str(
            pl.col("owner"),
            pl.col("serial").cast(pl.String).str.zfill(6),
            pl.col("check").cast(pl.String),
        )
    ).to_series()


def imo_number(rng: np.random.Generator) -> str:
    """An ``IMO`` + 7-digit ship number whose last digit is the IMO check digit."""
    digits = [int(d) for d in str(int(rng.integers(9_000_000, 9_999_999)))[:6]]
    check = sum(d * w for d, w in zip(digits, range(7, 1, -1), strict=True)) % 10
    return "IMO" + "".join(map(str, digits)) + str(check)


S10_WEIGHTS = np.array([8, 6, 4, 2, 3, 5, 9, 7], dtype=np.int64)


def s10_ids(rng: np.random.Generator, countries: pl.Series) -> pl.Series:
    """UPU S10 item ids (``EE123456785CN``): service prefix, 8 digits, check digit, country."""
    n = len(countries)
    serial = rng.integers(10_000_000, 99_999_999, size=n, dtype=np.int64)
    rest = serial.copy()
    total = np.zeros(n, dtype=np.int64)
    for position in range(7, -1, -1):
        total += (rest % 10) * S10_WEIGHTS[position]
        rest //= 10
    check = 11 - total % 11
    check = np.where(check == 10, 0, np.where(check == 11, 5, check))
    prefixes = pl.Series(["EE", "LX", "RR", "CP"])[rng.choice(4, size=n, p=[0.5, 0.2, 0.2, 0.1])]
    frame = pl.DataFrame({"p": prefixes, "s": serial, "c": check, "cc": countries})
    return frame.select(
        pl.concat_str(
            pl.col("p"), pl.col("s").cast(pl.String), pl.col("c").cast(pl.String), pl.col("cc")
        )
    ).to_series()


def random_chars(rng: np.random.Generator, alphabet: str, k: int) -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=k))


def mx_plate(rng: np.random.Generator) -> str:
    """A federal cargo plate in the ``12-AB-3C`` shape (assumed format)."""
    return (
        f"{int(rng.integers(10, 99))}-{random_chars(rng, LETTERS, 2)}-"
        f"{int(rng.integers(1, 9))}{random_chars(rng, LETTERS, 1)}"
    )


def rfc(rng: np.random.Generator, name: str, founded: tuple[int, int, int]) -> str:
    """A legal-person RFC: three letters from the name, the founding date YYMMDD, homoclave."""
    letters = "".join(ch for ch in name.upper() if ch in LETTERS)
    initials = (letters + "XXX")[:3]
    year, month, day = founded
    return f"{initials}{year % 100:02d}{month:02d}{day:02d}{random_chars(rng, ALNUM, 3)}"


def foreign_tax_id(rng: np.random.Generator, country: str) -> str:
    """A tax id in the broad shape each country uses (assumed formats, never validated)."""
    if country == "US":
        return f"{int(rng.integers(10, 99))}-{int(rng.integers(1_000_000, 9_999_999))}"
    if country == "CN":
        return (
            "91"
            + "".join(str(int(d)) for d in rng.integers(0, 10, 6))
            + random_chars(rng, ALNUM, 10)
        )
    if country == "IN":
        return f"{int(rng.integers(10, 37))}{random_chars(rng, LETTERS, 5)}" + (
            f"{int(rng.integers(1000, 9999))}{random_chars(rng, LETTERS, 1)}1Z"
            f"{random_chars(rng, ALNUM, 1)}"
        )
    if country in {"GT", "SV", "NI", "HN", "CR", "EC", "CO"}:
        return f"{int(rng.integers(1_000_000, 99_999_999))}-{int(rng.integers(0, 10))}"
    return country + random_chars(rng, string.digits, 9)
