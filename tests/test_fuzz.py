"""Malformed requests against a real server: every answer is a clean rejection or a decision.

Three kinds of traffic, all generated from a fixed seed so a failure replays exactly:

* **hostile** -- structurally valid ``ScoreShipmentRequest``s whose field values are hostile:
  random unicode, control characters, strings up to ~1 MB, NaN/inf/negative numbers,
  Timestamps outside years 1-9999 or with bad nanos, unknown enum numbers, missing parties,
  thousands of goods lines, bad CAS and HS codes. Sent unary.
* **stream** -- ``ScoreShipments`` streams mixing valid shipments with hostile requests and
  raw bytes: each stream must answer exactly one Decision per message, in order, score the
  valid ones and end OK.
* **outcome** -- ``RecordOutcome`` requests with hostile values (unknown or huge decision
  ids, unknown results, too many substances, huge notes). Sent unary.
* **raw** -- bytes that are not a request: random, truncated or bit-flipped serialized
  requests, nesting bombs. Sent unary to the RiskScoring methods and to health.

Every unary status must be OK or INVALID_ARGUMENT (NOT_FOUND for an outcome against an unknown
decision); never INTERNAL or UNKNOWN; every message under 2 KB, and no ERROR logged.

``CENTINELA_FUZZ_COUNT`` sets the number of requests (default 600, a few seconds);
``make fuzz`` runs 10,000 and prints the tally.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.canonical import canonical_code
from server.pb import risk_scoring_pb2 as pb
from tests.support import ServerThread, make_shipment, request_for

COUNT = int(os.environ.get("CENTINELA_FUZZ_COUNT", "600"))
SEED = int(os.environ.get("CENTINELA_FUZZ_SEED", "20250602"))
SHARES = {"hostile": 0.35, "outcome": 0.05, "stream": 0.4, "raw": 0.2}
MAX_MESSAGE = 2_048
MAX_REQUEST_BYTES = 3_500_000  # under the server's 4 MiB limit, which is its own answer
WORKERS = 4

SCORE = "/centinela.v1.RiskScoring/ScoreShipment"
SCORE_STREAM = "/centinela.v1.RiskScoring/ScoreShipments"
RAW_TARGETS = {
    # method: (response type, statuses a parseable accident may legitimately get)
    SCORE: (pb.Decision, {"OK", "INVALID_ARGUMENT"}),
    "/centinela.v1.RiskScoring/RecordOutcome": (
        pb.RecordOutcomeResponse,
        {"OK", "INVALID_ARGUMENT", "NOT_FOUND"},
    ),
    "/centinela.v1.RiskScoring/GetModelInfo": (pb.ModelInfo, {"OK", "INVALID_ARGUMENT"}),
    "/grpc.health.v1.Health/Check": (None, {"OK", "INVALID_ARGUMENT", "NOT_FOUND"}),
}

# --- Hostile values ----------------------------------------------------------------------

NASTY_CHARS = (
    "\x00\x01\x07\x08\t\n\r\x1b\x7f\x85\xa0\xad"  # controls, NEL, nbsp, soft hyphen
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2066\u2069\u2028\u2029\ufeff\ufffd\uffff"
    "\u0301\u0336\u20dd"  # combining marks
    "\uff12\uff19\u0663\u096f"  # full-width and other decimal digits
    "\u0410\u0415\u041e\u0421\u0440"  # Cyrillic look-alikes
    "\U0001f480\U0001f9ea\U000e0041\U0010fffd"  # emoji, tag, plane-16 private use
    "'\"\\%{}$;<>&|`"
)
FLOATS = (
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    -1.0,
    -0.0,
    0.0,
    5e-324,
    -5e-324,
    1e308,
    -1e308,
    1.7976931348623157e308,
    2.0**53 + 1,
    1e12 + 1,
    1e8 + 1,
)
TIMESTAMP_EDGES = (
    (-62_135_596_800, 0),  # 0001-01-01, valid for a Timestamp, out of range for a shipment
    (-62_135_596_801, 0),
    (253_402_300_799, 999_999_999),
    (253_402_300_800, 0),
    (2**63 - 1, 0),
    (-(2**63), 0),
    (1_748_874_600, -1),
    (1_748_874_600, 1_000_000_000),
    (1_748_874_600, 2**31 - 1),
    (1_748_874_600, -(2**31)),
    (0, 0),
    (631_152_000 - 1, 0),  # 1989-12-31T23:59:59Z
    (4_102_444_800, 0),  # 2100-01-01
)
ENUMS = (0, 5, 99, -1, 2**31 - 1, -(2**31))
BAD_HS = ("", "ABC", "29333", "00000000", "980000", "2933371234567", "２９３３３７", "293337\n")
BAD_CAS = ("", "39742-60-5", "NPP", "39742-6O-4", "1" * 40, "-", "0-00-0", "３９７４２-６０-４")


def _char(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(NASTY_CHARS)
    if roll < 0.6:
        return chr(rng.randrange(0x20, 0x7F))
    while True:  # any scalar value; surrogates cannot be sent as UTF-8
        code = rng.randrange(0x110000) if roll < 0.8 else rng.randrange(0x80, 0x3000)
        if not 0xD800 <= code <= 0xDFFF:
            return chr(code)


def hostile_text(rng: random.Random, allow_huge: bool = True) -> str:
    roll = rng.random()
    if allow_huge and roll < 0.02:
        chunk = "".join(_char(rng) for _ in range(rng.randint(1, 64)))
        return (chunk * (rng.randint(200_000, 1_000_000) // len(chunk) + 1))[:1_000_000]
    if allow_huge and roll < 0.08:
        return "".join(_char(rng) for _ in range(rng.randint(300, 5_000)))
    if roll < 0.15:
        return ""
    if roll < 0.25:
        return " " * rng.randint(1, 20)
    return "".join(_char(rng) for _ in range(rng.randint(1, 60)))


def _valid_request(rng: random.Random, shipment_id: str) -> pb.ScoreShipmentRequest:
    return request_for(make_shipment(shipment_id))


def _set_text(msg: Any, name: str, rng: random.Random, allow_huge: bool) -> None:
    setattr(msg, name, hostile_text(rng, allow_huge))


def mutate(request: pb.ScoreShipmentRequest, rng: random.Random) -> list[str]:
    """Apply one to four hostile mutations to ``request``; return their names."""
    s = request.shipment
    applied: list[str] = []
    huge_left = True  # at most one value of up to ~1 MB per request
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        kind = rng.choice(MUTATIONS)
        applied.append(kind)
        if kind == "text":
            target = rng.choice(
                (
                    (s, "shipment_id"),
                    (s, "port_of_entry"),
                    (s, "origin_country"),
                    (s, "export_country"),
                    (s, "carrier"),
                    (s, "conveyance_id"),
                    (s, "container_id"),
                    (s, "broker_id"),
                    (s.shipper, "id"),
                    (s.shipper, "name"),
                    (s.shipper, "country"),
                    (s.consignee, "tax_id"),
                    (s.consignee, "id"),
                    (s.goods[0], "hs_code"),
                    (s.goods[0], "description"),
                    (s.goods[-1], "unit"),
                )
            )
            _set_text(*target, rng, huge_left)
            huge_left = False
        elif kind == "free_text":  # may stay valid: scored with hostile text
            line = rng.choice(s.goods)
            line.description = hostile_text(rng, allow_huge=False)[:4_000] or "x"
            s.shipper.name = hostile_text(rng, allow_huge=False)[:256]
            s.carrier = hostile_text(rng, allow_huge=False)[:256]
        elif kind == "number":
            line = rng.choice(s.goods)
            field = rng.choice(("quantity", "gross_weight_kg", "declared_value_usd"))
            setattr(line, field, rng.choice(FLOATS))
        elif kind == "timestamp":
            seconds, nanos = (
                rng.choice(TIMESTAMP_EDGES)
                if rng.random() < 0.6
                else (rng.randint(-(2**63), 2**63 - 1), rng.randint(-(2**31), 2**31 - 1))
            )
            s.declared_at.seconds, s.declared_at.nanos = seconds, nanos
        elif kind == "no_timestamp":
            s.ClearField("declared_at")
        elif kind == "enum":
            s.mode = rng.choice(ENUMS)
        elif kind == "party":
            s.ClearField(rng.choice(("shipper", "consignee")))
        elif kind == "no_shipment":
            request.ClearField("shipment")
            return applied
        elif kind == "goods_lines":
            line = s.goods[rng.randrange(len(s.goods))]
            many = rng.choice((0, 1_001, rng.randint(1_001, 3_000), rng.randint(20, 200)))
            del s.goods[:]
            s.goods.extend([line] * many)
            return applied  # the last mutation: the others may need a goods line
        elif kind == "hs":
            rng.choice(s.goods).hs_code = rng.choice(BAD_HS)
        elif kind == "cas":
            line = rng.choice(s.goods)
            line.cas_numbers.extend(rng.choice(BAD_CAS) for _ in range(rng.choice((1, 2, 60))))
        elif kind == "ports":
            s.transshipment_ports.extend(
                hostile_text(rng, allow_huge=False) for _ in range(rng.choice((1, 3, 40)))
            )
        if request.ByteSize() > MAX_REQUEST_BYTES:  # pragma: no cover - bounded above
            request.shipment.goods[0].description = ""
    return applied


MUTATIONS = (
    "text",
    "text",
    "free_text",
    "number",
    "timestamp",
    "timestamp",
    "no_timestamp",
    "enum",
    "party",
    "no_shipment",
    "goods_lines",
    "hs",
    "cas",
    "ports",
)


def hostile_request(rng: random.Random, shipment_id: str) -> pb.ScoreShipmentRequest:
    request = _valid_request(rng, shipment_id)
    mutate(request, rng)
    return request


def raw_bytes(rng: random.Random) -> bytes:
    """Bytes that are mostly not a ScoreShipmentRequest."""
    valid = _valid_request(rng, f"RAW-{rng.randrange(10**6)}").SerializeToString()
    kind = rng.choice(("random", "truncated", "flipped", "suffix", "bomb", "varint", "utf8"))
    if kind == "random":
        return rng.randbytes(rng.choice((1, 2, 7, 64, 512, 4_096)))
    if kind == "truncated":
        return valid[: rng.randrange(1, len(valid))]
    if kind == "flipped":
        data = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == "suffix":
        return valid + rng.randbytes(rng.randint(1, 32))
    if kind == "bomb":  # nested unknown groups, past the parser's recursion limit
        return b"\x7b" * rng.randint(101, 20_000)
    if kind == "varint":  # a tag whose varint never ends
        return b"\x0a" + b"\xff" * rng.randint(10, 100)
    # A string field holding invalid UTF-8: shipment { shipment_id: <bad bytes> }.
    bad = rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"))
    inner = b"\x0a" + bytes([len(bad)]) + bad
    return b"\x0a" + bytes([len(inner)]) + inner


# --- Checks ------------------------------------------------------------------------------


def _parsed(data: bytes) -> pb.ScoreShipmentRequest | None:
    try:
        return pb.ScoreShipmentRequest.FromString(data)
    except DecodeError:
        return None


def _expected_id(message: pb.ScoreShipmentRequest | bytes) -> str:
    request = _parsed(message) if isinstance(message, bytes) else message
    return "" if request is None else request.shipment.shipment_id[:1024]


def _check_status(error: grpc.RpcError, allowed: set[str], what: str) -> str:
    code = error.code().name  # type: ignore[attr-defined]
    details = error.details() or ""  # type: ignore[attr-defined]
    assert code in allowed, f"{what}: {code} {details[:300]!r}"
    assert len(details.encode()) < MAX_MESSAGE, f"{what}: {len(details.encode())} bytes"
    return str(code)


@dataclasses.dataclass
class Tally:
    sent: Counter[str] = dataclasses.field(default_factory=Counter)
    statuses: Counter[str] = dataclasses.field(default_factory=Counter)
    stream_answers: Counter[str] = dataclasses.field(default_factory=Counter)
    streams: int = 0
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def line(self) -> str:
        sent = ", ".join(f"{k} {v}" for k, v in sorted(self.sent.items()))
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        answers = ", ".join(f"{k} {v}" for k, v in sorted(self.stream_answers.items()))
        return (
            f"fuzz (seed {SEED}): {sum(self.sent.values())} requests ({sent}) in "
            f"{time.perf_counter() - self.started:.1f} s; unary statuses: {statuses}; "
            f"{self.streams} streams, decisions: {answers}"
        )


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    counts = Tally()
    yield counts
    print(f"\n{counts.line()}")


@pytest.fixture(autouse=True)
def nothing_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A bad request is the caller's problem: it never logs an ERROR (nor a traceback)."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors[:5]]


def _share(kind: str) -> int:
    return max(1, round(COUNT * SHARES[kind]))


def _run_all(jobs: list[Callable[[], None]]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def test_hostile_unary_requests_are_decided_or_rejected_cleanly(
    server: ServerThread, tally: Tally
) -> None:
    stub = server.channel.unary_unary(
        SCORE,
        request_serializer=pb.ScoreShipmentRequest.SerializeToString,
        response_deserializer=pb.Decision.FromString,
    )

    def one(i: int) -> None:
        rng = random.Random(f"{SEED}-hostile-{i}")
        request = hostile_request(rng, f"H-{i}")
        what = f"hostile #{i} (seed {SEED})"
        try:
            decision = stub(request, timeout=60)
        except grpc.RpcError as error:
            tally.statuses[_check_status(error, {"INVALID_ARGUMENT"}, what)] += 1
            return
        assert decision.decision_id, what
        assert not decision.HasField("error"), what
        tally.statuses["OK"] += 1

    n = _share("hostile")
    _run_all([lambda i=i: one(i) for i in range(n)])
    tally.sent["hostile"] += n


def hostile_outcome(rng: random.Random) -> pb.RecordOutcomeRequest:
    request = pb.RecordOutcomeRequest(
        decision_id=rng.choice(("", "0" * 32, hostile_text(rng))),
        inspected=rng.random() < 0.7,
        result=rng.choice(("", "positive", "negative", "inconclusive", hostile_text(rng, False))),
        lab_confirmed=rng.random() < 0.5,
    )
    request.substances.extend(
        hostile_text(rng, allow_huge=False) for _ in range(rng.choice((0, 1, 3, 51)))
    )
    if rng.random() < 0.3:
        request.notes = hostile_text(rng, allow_huge=request.ByteSize() < 1_000)
    return request


def test_hostile_outcomes_are_rejected_cleanly(server: ServerThread, tally: Tally) -> None:
    stub = server.channel.unary_unary(
        "/centinela.v1.RiskScoring/RecordOutcome",
        request_serializer=pb.RecordOutcomeRequest.SerializeToString,
        response_deserializer=pb.RecordOutcomeResponse.FromString,
    )

    def one(i: int) -> None:
        request = hostile_outcome(random.Random(f"{SEED}-outcome-{i}"))
        what = f"outcome #{i} (seed {SEED})"
        with pytest.raises(grpc.RpcError) as caught:  # no decision id of the fuzz exists
            stub(request, timeout=60)
        tally.statuses[_check_status(caught.value, {"INVALID_ARGUMENT", "NOT_FOUND"}, what)] += 1

    n = _share("outcome")
    _run_all([lambda i=i: one(i) for i in range(n)])
    tally.sent["outcome"] += n


def test_raw_bytes_are_invalid_argument_never_unknown(server: ServerThread, tally: Tally) -> None:
    calls = {
        method: server.channel.unary_unary(
            method,
            request_serializer=None,
            response_deserializer=kind.FromString if kind else None,
        )
        for method, (kind, _) in RAW_TARGETS.items()
    }
    methods = list(RAW_TARGETS)

    def one(i: int) -> None:
        rng = random.Random(f"{SEED}-raw-{i}")
        data = raw_bytes(rng)
        method = SCORE if rng.random() < 0.7 else rng.choice(methods)
        allowed = RAW_TARGETS[method][1]
        what = f"raw #{i} to {method} (seed {SEED}): {data[:40]!r}"
        try:
            calls[method](data, timeout=60)
        except grpc.RpcError as error:
            tally.statuses[_check_status(error, allowed - {"OK"}, what)] += 1
            return
        assert "OK" in allowed, what
        tally.statuses["OK"] += 1

    n = _share("raw")
    _run_all([lambda i=i: one(i) for i in range(n)])
    tally.sent["raw"] += n


def _stream_messages(rng: random.Random, stream: int, size: int) -> list[bytes]:
    out = []
    for j in range(size):
        roll = rng.random()
        if roll < 0.3:
            request = _valid_request(rng, f"V-{stream}-{j}")
        elif roll < 0.75:
            request = hostile_request(rng, f"B-{stream}-{j}")
        else:
            out.append(raw_bytes(rng))
            continue
        out.append(request.SerializeToString())
    return out


def test_streams_answer_every_message_in_order_and_never_end_early(
    server: ServerThread, tally: Tally
) -> None:
    call = server.channel.stream_stream(
        SCORE_STREAM, request_serializer=None, response_deserializer=pb.Decision.FromString
    )
    total = _share("stream")
    sizes: list[int] = []
    rng = random.Random(f"{SEED}-stream-sizes")
    while sum(sizes) < total:
        sizes.append(min(rng.choice((1, 2, 5, 10, 20, 40, 60)), total - sum(sizes)))

    def one(k: int) -> None:
        messages = _stream_messages(random.Random(f"{SEED}-stream-{k}"), k, sizes[k])
        what = f"stream #{k} (seed {SEED})"
        try:
            decisions = list(call(iter(messages), timeout=120))
        except grpc.RpcError as error:  # pragma: no cover - the failure being guarded against
            code, details = error.code(), error.details()  # type: ignore[attr-defined]
            pytest.fail(f"{what} ended early: {code} {details!r}")
        assert len(decisions) == len(messages), what
        for j, (message, decision) in enumerate(zip(messages, decisions, strict=True)):
            at = f"{what} message {j}"
            if decision.HasField("error"):
                assert decision.shipment_id == canonical_code(_expected_id(message)), at
                assert decision.error.code == "INVALID_ARGUMENT", (at, decision.error)
                assert len(decision.error.message.encode()) < MAX_MESSAGE, at
                assert len(decision.error.field_violations) <= 21, at
                assert not decision.shipment_id.startswith("V-"), (at, decision.error)
                tally.stream_answers[decision.error.code] += 1
            else:
                # Every Decision names the shipment by its canonical id (scoring.service).
                assert decision.shipment_id == canonical_code(_expected_id(message)), at
                assert decision.decision_id, at
                assert decision.lane != pb.LANE_UNSPECIFIED, at
                tally.stream_answers["scored"] += 1

    _run_all([lambda k=k: one(k) for k in range(len(sizes))])
    tally.streams += len(sizes)
    tally.sent["stream"] += total


def test_the_server_still_scores_after_the_fuzz(server: ServerThread) -> None:
    stub = server.channel.unary_unary(
        SCORE,
        request_serializer=pb.ScoreShipmentRequest.SerializeToString,
        response_deserializer=pb.Decision.FromString,
    )
    decision = stub(request_for(make_shipment("AFTER-FUZZ")), timeout=30)
    assert decision.decision_id
    assert decision.lane == pb.LANE_RED


# --- The request space as hypothesis draws it ------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\u200b", "293337", "2933.37", "39742-60-4", "039742604", "MXZLO", "CN", "\n"]
)
_NUMBER = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)


@st.composite
def shipment_requests(draw: st.DrawFn) -> pb.ScoreShipmentRequest:
    """Any ScoreShipmentRequest: every field drawn from hostile and plausible values alike."""
    goods = [
        pb.GoodsLine(
            hs_code=draw(_TEXT),
            description=draw(_TEXT),
            cas_numbers=draw(st.lists(_TEXT, max_size=3)),
            quantity=draw(_NUMBER),
            unit=draw(_TEXT),
            gross_weight_kg=draw(_NUMBER),
            declared_value_usd=draw(_NUMBER),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    party = st.builds(pb.Party, id=_TEXT, name=_TEXT, country=_TEXT, tax_id=_TEXT)
    request = pb.ScoreShipmentRequest(
        shipment=pb.Shipment(
            shipment_id=draw(_TEXT),
            port_of_entry=draw(_TEXT),
            mode=draw(st.integers(-3, 9)),
            origin_country=draw(_TEXT),
            export_country=draw(_TEXT),
            transshipment_ports=draw(st.lists(_TEXT, max_size=3)),
            carrier=draw(_TEXT),
            shipper=draw(party),
            consignee=draw(party),
            broker_id=draw(_TEXT),
            goods=goods,
        )
    )
    if draw(st.booleans()):
        request.shipment.declared_at.seconds = draw(st.integers(-(2**62), 2**62))
        request.shipment.declared_at.nanos = draw(st.integers(-(2**31), 2**31 - 1))
    return request


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=shipment_requests())
def test_the_drawn_request_space_yields_only_ok_or_invalid_argument(
    server: ServerThread, request: pb.ScoreShipmentRequest
) -> None:
    score = server.channel.unary_unary(
        SCORE,
        request_serializer=pb.ScoreShipmentRequest.SerializeToString,
        response_deserializer=pb.Decision.FromString,
    )
    try:
        decision = score(request, timeout=30)
    except grpc.RpcError as error:
        _check_status(error, {"INVALID_ARGUMENT"}, "drawn request")
    else:
        assert decision.lane != pb.LANE_UNSPECIFIED
