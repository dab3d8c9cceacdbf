"""The ledger keeps every entry durably, shares commits, and names the first tampered row."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from features.errors import ConfigError
from scoring.ledger import Entry, Ledger, verify


def fill(path: Path, n: int = 10) -> None:
    ledger = Ledger(path)
    futures = [
        ledger.append(Entry("decision", f"d{i}", {"i": i, "lane": "green"})) for i in range(n)
    ]
    assert [f.result(timeout=10) for f in futures] == list(range(1, n + 1))
    ledger.close()


def test_entries_survive_reopening_and_chain_continues(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    fill(path, 5)
    ledger = Ledger(path)
    assert ledger.append(Entry("outcome", "d1", {"result": "negative"})).result(timeout=10) == 6
    assert [r.kind for r in ledger.entries_for("d1")] == ["decision", "outcome"]
    ledger.close()
    assert verify(path).ok
    assert verify(path).rows == 6


def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(lambda i: ledger.append(Entry("decision", f"d{i}", {"i": i})).result(), i)
            for i in range(400)
        ]
        seqs = sorted(f.result(timeout=30) for f in futures)
    assert seqs == list(range(1, 401))
    assert ledger.commits < 400
    ledger.close()
    assert verify(tmp_path / "ledger.sqlite").ok


def tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("sql", "seq", "words"),
    [
        ('UPDATE ledger SET payload = \'{"i":3,"lane":"red"}\' WHERE seq = 4', 4, "edited"),
        ("DELETE FROM ledger WHERE seq = 6", 6, "missing"),
        ("DELETE FROM ledger WHERE seq = 10", 10, "head"),
        (
            "UPDATE ledger SET seq = CASE seq WHEN 3 THEN 1003 WHEN 7 THEN 3 END "
            "WHERE seq IN (3, 7)",
            3,
            "reordered",
        ),
    ],
)
def test_verify_names_the_first_tampered_row(
    tmp_path: Path, sql: str, seq: int, words: str
) -> None:
    path = tmp_path / "ledger.sqlite"
    fill(path, 10)
    tamper(path, sql)
    result = verify(path)
    assert not result.ok
    assert result.seq == seq
    assert words in result.problem


def test_swapping_two_payloads_is_an_edit(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    fill(path, 4)
    conn = sqlite3.connect(path)
    p2, p3 = (
        r[0] for r in conn.execute("SELECT payload FROM ledger WHERE seq IN (2, 3) ORDER BY seq")
    )
    conn.execute("UPDATE ledger SET payload = ? WHERE seq = 2", (p3,))
    conn.execute("UPDATE ledger SET payload = ? WHERE seq = 3", (p2,))
    conn.commit()
    conn.close()
    result = verify(path)
    assert (result.ok, result.seq) == (False, 2)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite database"):
        Ledger(path)
