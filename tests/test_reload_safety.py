"""Reloads that cannot hurt: damaged bundles, watchlists, rules and registry records.

A real server scores shipments in a loop on another thread while every kind of damage is
promoted and reloaded: each reload must answer FAILED_PRECONDITION naming the problem, no scoring
request may fail, and the versions that served before must go on serving. A good bundle and a
good watchlist reload fine afterwards. Then the same checks at start, and the pieces on their own:
the child process that takes LightGBM's aborts, the refusal of bundles without a manifest, the
registry record and the file readers.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from features.errors import ConfigError, FailedPrecondition, ModelError
from features.watchlist import load_watchlist
from scoring import bundle as bundles
from scoring.bundle import HASHED_FILES, META_FILE, MODEL_FILE, REFERENCE_FILE, load_bundle, seal
from scoring.registry import Registry
from scoring.rules import load_rules
from server.pb import admin_pb2, admin_pb2_grpc
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.support import ServerThread, make_shipment, request_for

SHIPPED_WATCHLIST = files("features.watchlist").joinpath("watchlist.yaml").read_bytes()
SHIPPED_RULES = files("scoring").joinpath("rules.yaml").read_bytes()


# --- Making damage --------------------------------------------------------------------------


def reseal(bundle: Path) -> None:
    """Recompute the manifest over the bundle's files as they are now: a bundle whose files were
    damaged before they were hashed, or by someone who rewrote the hashes too."""
    doc = json.loads((bundle / META_FILE).read_text(encoding="utf-8"))
    present = {n: (bundle / n).read_bytes() for n in HASHED_FILES if (bundle / n).exists()}
    (bundle / META_FILE).write_text(json.dumps(seal(doc, present), indent=2), encoding="utf-8")


def resealed(damage: Callable[[Path], object]) -> Callable[[Path], object]:
    def apply(bundle: Path) -> None:
        damage(bundle)
        reseal(bundle)

    return apply


def edit_meta(bundle: Path, change: Callable[[dict[str, object]], None]) -> None:
    doc = json.loads((bundle / META_FILE).read_text(encoding="utf-8"))
    change(doc)
    (bundle / META_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")


def edit_model(bundle: Path, change: Callable[[str], str]) -> None:
    path = bundle / MODEL_FILE
    text = path.read_text(encoding="utf-8")
    changed = change(text)
    assert changed != text, "the damage must change the model"
    path.write_text(changed, encoding="utf-8")


def truncate(path: Path, share: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])


def flip_bit(path: Path, share: float, bit: int = 2) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * share)] ^= 1 << bit
    path.write_bytes(bytes(data))


def nan_leaves(text: str) -> str:
    """Every leaf value written as nan."""

    def to_nan(match: re.Match[str]) -> str:
        return "leaf_value=" + " ".join("nan" for _ in match.group(1).split())

    return re.sub(r"^leaf_value=(.*)$", to_nan, text, flags=re.MULTILINE)


def one_nan_leaf(text: str) -> str:
    return re.sub(r"^leaf_value=\S+", "leaf_value=nan", text, count=1, flags=re.MULTILINE)


def first_tree_num_leaves(text: str) -> str:
    return re.sub(
        r"^num_leaves=(\d+)$",
        lambda m: f"num_leaves={int(m.group(1)) + 40}",
        text,
        count=1,
        flags=re.MULTILINE,
    )


def drop_first_feature(doc: dict[str, object]) -> None:
    schema = doc["schema"]
    assert isinstance(schema, list)
    doc["schema"] = schema[1:]


def set_calibration(a: float) -> Callable[[dict[str, object]], None]:
    """Replace whatever calibration the bundle has by Platt scaling of slope ``a``."""

    def change(doc: dict[str, object]) -> None:
        doc["calibration"] = {"method": "platt", "a": a, "b": 0.0, "floor": 1e-4}

    return change


def to_format_1(doc: dict[str, object]) -> None:
    doc.pop("integrity")
    doc["format"] = 1


def shift_reference_score(bundle: Path) -> None:
    path = bundle / REFERENCE_FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    top = max(range(len(doc["scores"])), key=doc["scores"].__getitem__)  # far above atol
    doc["scores"][top] = doc["scores"][top] * 1.001
    path.write_text(json.dumps(doc), encoding="utf-8")


# Each bundle damage: (id, what to do to a copy of the serving bundle, what the error must say).
# "resealed" damage rewrites the manifest afterwards, so the checks behind the hashes must
# catch it: the child process, the leaf scan, the schema and the reference scores.
BUNDLE_DAMAGE: list[tuple[str, Callable[[Path], object], str]] = [
    ("truncated", lambda b: truncate(b / MODEL_FILE, 0.5), r"model\.txt: SHA-256 .* not match"),
    ("truncated-empty", lambda b: truncate(b / MODEL_FILE, 0.0), r"model\.txt: SHA-256"),
    *(
        (
            f"bit-flip-{share:.0%}",
            lambda b, s=share: flip_bit(b / MODEL_FILE, s),
            r"model\.txt: SHA",
        )
        for share in (0.01, 0.2, 0.5, 0.77, 0.95)
    ),
    (
        "truncated-resealed",
        resealed(lambda b: truncate(b / MODEL_FILE, 0.5)),
        r"model\.txt: LightGBM (crashed \(SIG[A-Z]+\)|cannot read the model)",
    ),
    (
        "tree-header-resealed",
        resealed(lambda b: edit_model(b, first_tree_num_leaves)),
        r"model\.txt: LightGBM (crashed \(SIG[A-Z]+\)|cannot read the model)",
    ),
    (
        "nan-leaves-resealed",
        resealed(lambda b: edit_model(b, nan_leaves)),
        r"model\.txt: values that are not finite numbers \(\d+ leaf_value\)",
    ),
    (
        "one-nan-leaf-resealed",
        resealed(lambda b: edit_model(b, one_nan_leaf)),
        r"model\.txt: values that are not finite numbers \(1 leaf_value\)",
    ),
    ("nan-leaves", lambda b: edit_model(b, nan_leaves), r"model\.txt: SHA-256"),
    (
        "feature-schema-resealed",
        resealed(lambda b: edit_meta(b, drop_first_feature)),
        r"trained on another feature schema: features the code computes but the bundle lacks",
    ),
    (
        "model-feature-names-resealed",
        resealed(
            lambda b: edit_model(
                b, lambda t: t.replace("feature_names=port_code", "feature_names=port_x")
            )
        ),
        r"model\.txt: the model's feature names do not match the schema \(feature 0 is 'port_x'",
    ),
    ("model-missing", lambda b: (b / MODEL_FILE).unlink(), r"model\.txt: file missing"),
    ("reference-missing", lambda b: (b / REFERENCE_FILE).unlink(), r"reference\.json: file miss"),
    (
        "meta-edited",
        lambda b: edit_meta(b, set_calibration(2.0)),
        r"bundle\.json: contents do not match the SHA-256 recorded",
    ),
    (
        "calibration-resealed",
        resealed(lambda b: edit_meta(b, set_calibration(2.0))),
        r"scores of the 32 reference inputs differ from those recorded",
    ),
    (
        "calibration-nan-resealed",
        resealed(lambda b: edit_meta(b, set_calibration(float("nan")))),
        r"scores 32 of 32 reference inputs NaN or infinity",
    ),
    (
        "reference-score-resealed",
        resealed(shift_reference_score),
        r"reference inputs differ from those recorded",
    ),
    ("meta-truncated", lambda b: truncate(b / META_FILE, 0.6), r"unreadable bundle metadata"),
    ("meta-not-utf8", lambda b: flip_bit(b / META_FILE, 0.3, bit=7), r"unreadable bundle meta"),
    ("meta-empty", lambda b: truncate(b / META_FILE, 0.0), r"unreadable bundle metadata"),
    (
        "no-manifest",
        lambda b: edit_meta(b, to_format_1),
        r"has no integrity manifest .* centinela train --data DIR --registry",
    ),
]


def write_record(registry: Path, data: bytes) -> None:
    (registry / "registry.json").write_bytes(data)


RECORD_DAMAGE: list[tuple[str, bytes, str]] = [
    ("record-empty", b"", r"registry\.json: the registry record is damaged \(empty\)"),
    ("record-truncated", b'{"history": ["v00', r"registry\.json: .*\(not valid JSON"),
    ("record-garbage", b"\x00\x01PK\x03\x04", r"registry\.json: .*\(not valid JSON"),
    ("record-not-utf8", b'{"history": ["v0001\xff"]}', r"registry\.json: .*invalid UTF-8 at byte"),
    ("record-shape", b'{"history": "v0001"}', r"registry\.json: .*not of the form"),
    ("record-path", b'{"history": ["../v0001"]}', r"registry\.json: .*not of the form"),
    (
        "record-unknown",
        b'{"history": ["v0099"]}',
        r"registry\.json: promotes 'v0099', which is not",
    ),
]


def cut_inside(data: bytes, after: bytes, marker: bytes) -> bytes:
    """``data`` cut a few bytes into the first ``marker`` after ``after`` (past the comments):
    an unterminated YAML construct."""
    at = data.index(marker, data.index(after))
    return data[: at + len(marker) + 2]


WATCHLIST_DAMAGE: list[tuple[str, str, bytes | None, str]] = [
    # (id, which file, its damaged bytes (None: delete it), what the error must say)
    (
        "watchlist-not-utf8",
        "watchlist",
        SHIPPED_WATCHLIST[:5000] + b"\xff\xfe" + SHIPPED_WATCHLIST[5000:],
        r"watchlist\.yaml: watchlist is not UTF-8 text: byte 0xff at offset 5000 \(line \d+\)",
    ),
    (
        "watchlist-truncated",
        "watchlist",
        cut_inside(SHIPPED_WATCHLIST, b"\nentries:", b"{number: "),
        r"watchlist\.yaml: not valid YAML",
    ),
    ("watchlist-empty", "watchlist", b"", r"watchlist\.yaml"),
    ("watchlist-binary", "watchlist", bytes(range(256)) * 4, r"watchlist\.yaml: watchlist is not"),
    (
        "watchlist-nul",
        "watchlist",
        b"version: \x00\x00\n",
        r"watchlist\.yaml: not valid YAML:\s+- .*watchlist\.yaml:1: special characters",
    ),
    ("watchlist-deep", "watchlist", b"[" * 5000, r"watchlist\.yaml: not valid YAML"),
    ("watchlist-missing", "watchlist", None, r"watchlist\.yaml: cannot read watchlist"),
    (
        "rules-not-utf8",
        "rules",
        b"\xc3" + SHIPPED_RULES,
        r"rules\.yaml: rules is not UTF-8 text: byte 0xc3 at offset 0 \(line 1\)",
    ),
    (
        "rules-truncated",
        "rules",
        cut_inside(SHIPPED_RULES, b"\nrules:", b"lists: ["),
        r"rules\.yaml: not valid",
    ),
    ("rules-nul", "rules", SHIPPED_RULES + b"\x00", r"rules\.yaml: not valid YAML:\s+- line \d+"),
    ("rules-deep", "rules", b"{a: " * 3000, r"rules\.yaml: not valid YAML"),
    ("rules-empty", "rules", b"", r"rules\.yaml"),
]


# --- The rig: a server on a copy of the registry, scored in a loop ---------------------------


@dataclass
class LoadLoop:
    """Scores shipments one after another on its own channel until stopped."""

    port: int
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            scoring = pb_grpc.RiskScoringStub(channel)
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    decision = scoring.ScoreShipment(
                        request_for(make_shipment(f"LOAD-{i}")), timeout=30
                    )
                    assert 0.0 <= decision.risk_score <= 1.0, decision.risk_score
                    self.versions.add(decision.model_version)
                    self.ok += 1
                except Exception as error:  # every failure is recorded, none is expected
                    detail = error.details() if isinstance(error, grpc.RpcError) else repr(error)
                    self.failures.append(f"request {i}: {detail}")
                time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


@dataclass
class Rig:
    server: ServerThread
    registry: Path
    watchlist: Path
    rules: Path
    loop: LoadLoop
    admin: admin_pb2_grpc.AdminStub
    scoring: pb_grpc.RiskScoringStub
    before: pb.ModelInfo
    results: list[tuple[str, str, str]] = field(default_factory=list)

    def info(self) -> pb.ModelInfo:
        return self.scoring.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)

    def promote(self, version: str) -> None:
        write_record(self.registry, json.dumps({"history": ["v0001", version]}).encode())

    def restore(self) -> None:
        write_record(self.registry, json.dumps({"history": ["v0001"]}).encode())
        self.watchlist.write_bytes(SHIPPED_WATCHLIST)
        self.rules.write_bytes(SHIPPED_RULES)

    def refused(self, case: str, reload: Callable[[], object], pattern: str) -> None:
        """``reload`` answers FAILED_PRECONDITION matching ``pattern`` while the loop scores,
        and the versions serving stay as they were."""
        served = self.loop.ok
        with pytest.raises(grpc.RpcError) as caught:
            reload()
        code, message = caught.value.code(), caught.value.details() or ""
        self.results.append((case, code.name, message))
        assert code is grpc.StatusCode.FAILED_PRECONDITION, (case, code, message)
        assert re.search(pattern, message, re.DOTALL), (case, message)
        info = self.info()
        assert (info.model_version, info.watchlist_version, info.rules_version) == (
            self.before.model_version,
            self.before.watchlist_version,
            self.before.rules_version,
        )
        health = health_pb2_grpc.HealthStub(self.server.channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        deadline = time.monotonic() + 10
        while self.loop.ok == served and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.loop.ok > served, "the load loop stopped scoring"
        assert not self.loop.failures, self.loop.failures[:5]


@pytest.fixture(scope="module")
def rig(registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    workdir = tmp_path_factory.mktemp("reload-safety")
    copy = workdir / "registry"
    shutil.copytree(registry, copy)
    watchlist, rules = workdir / "watchlist.yaml", workdir / "rules.yaml"
    watchlist.write_bytes(SHIPPED_WATCHLIST)
    rules.write_bytes(SHIPPED_RULES)
    settings = server_settings(copy, workdir, watchlist_file=watchlist, rules_file=rules)
    running = ServerThread(settings)
    loop: LoadLoop | None = None
    try:
        assert running.load()
        scoring = pb_grpc.RiskScoringStub(running.channel)
        before = scoring.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
        assert before.model_version == "v0001"
        loop = LoadLoop(running.port)
        loop.start()
        yield Rig(
            running,
            copy,
            watchlist,
            rules,
            loop,
            admin_pb2_grpc.AdminStub(running.channel),
            scoring,
            before,
        )
    finally:
        if loop is not None:
            loop.stop()
        running.stop()


@pytest.mark.parametrize(
    ("case", "damage", "pattern"), BUNDLE_DAMAGE, ids=[c for c, _, _ in BUNDLE_DAMAGE]
)
def test_damaged_bundle_is_refused_while_scoring_goes_on(
    rig: Rig, case: str, damage: Callable[[Path], object], pattern: str
) -> None:
    version = f"v{100 + [c for c, _, _ in BUNDLE_DAMAGE].index(case):04d}"
    target = rig.registry / version
    shutil.copytree(rig.registry / "v0001", target)
    damage(target)
    rig.promote(version)
    try:
        rig.refused(
            case, lambda: rig.admin.ReloadModel(admin_pb2.ReloadModelRequest(), timeout=60), pattern
        )
    finally:
        rig.restore()


@pytest.mark.parametrize(
    ("case", "record", "pattern"), RECORD_DAMAGE, ids=[c for c, _, _ in RECORD_DAMAGE]
)
def test_damaged_registry_record_is_refused_while_scoring_goes_on(
    rig: Rig, case: str, record: bytes, pattern: str
) -> None:
    write_record(rig.registry, record)
    try:
        rig.refused(
            case, lambda: rig.admin.ReloadModel(admin_pb2.ReloadModelRequest(), timeout=60), pattern
        )
    finally:
        rig.restore()


@pytest.mark.parametrize(
    ("case", "which", "data", "pattern"), WATCHLIST_DAMAGE, ids=[c[0] for c in WATCHLIST_DAMAGE]
)
def test_damaged_watchlist_or_rules_is_refused_while_scoring_goes_on(
    rig: Rig, case: str, which: str, data: bytes | None, pattern: str
) -> None:
    path = rig.watchlist if which == "watchlist" else rig.rules
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)
    try:
        rig.refused(
            case,
            lambda: rig.admin.ReloadWatchlists(admin_pb2.ReloadWatchlistsRequest(), timeout=60),
            pattern,
        )
    finally:
        rig.restore()


def test_after_the_matrix_good_files_reload_and_nothing_failed(rig: Rig, world: Path) -> None:
    from training.train import train

    expected = len(BUNDLE_DAMAGE) + len(RECORD_DAMAGE) + len(WATCHLIST_DAMAGE)
    assert len(rig.results) == expected, "run the whole module: the matrix comes first"
    for case, code, message in rig.results:  # the matrix, for the record (pytest -s shows it)
        print(f"{case:32} {code:20} {message[:300]}")

    fresh = train(world, rig.registry, seed=3, promote=True)
    reply = rig.admin.ReloadModel(admin_pb2.ReloadModelRequest(), timeout=60)
    assert reply.model_version == fresh.version != "v0001"
    assert rig.info().model_version == fresh.version

    newer = SHIPPED_WATCHLIST.replace(
        f'version: "{rig.before.watchlist_version}"'.encode(), b'version: "2099.1.1"'
    )
    assert newer != SHIPPED_WATCHLIST
    rig.watchlist.write_bytes(newer)
    reply = rig.admin.ReloadWatchlists(admin_pb2.ReloadWatchlistsRequest(), timeout=60)
    assert reply.watchlist_version == "2099.1.1"

    deadline = time.monotonic() + 10
    while fresh.version not in rig.loop.versions and time.monotonic() < deadline:
        time.sleep(0.01)
    rig.loop.stop()
    assert not rig.loop.failures, rig.loop.failures[:5]
    assert rig.loop.ok > expected
    assert rig.loop.versions == {"v0001", fresh.version}

    url = f"http://127.0.0.1:{rig.server.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    reloads = {
        (sample.labels["target"], sample.labels["result"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "centinela_reloads"
        for sample in family.samples
        if sample.name == "centinela_reloads_total"
    }
    assert reloads == {
        ("model", "failed"): len(BUNDLE_DAMAGE) + len(RECORD_DAMAGE),
        ("watchlist", "failed"): len(WATCHLIST_DAMAGE),
        ("model", "ok"): 1,
        ("watchlist", "ok"): 1,
    }


# --- At start --------------------------------------------------------------------------------


def test_a_damaged_promoted_bundle_at_start_is_one_log_line_and_not_serving(
    registry: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "registry"
    shutil.copytree(registry, copy)
    truncate(copy / "v0001" / MODEL_FILE, 0.5)
    running = ServerThread(server_settings(copy, tmp_path))
    try:
        with caplog.at_level(logging.ERROR):
            assert not running.load()
        lines = [
            r
            for r in caplog.records
            if r.levelno >= logging.ERROR and r.name.startswith(("server", "scoring"))
        ]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert "model.txt: SHA-256" in lines[0].getMessage()
        assert lines[0].exc_info is None  # one line, no traceback
        health = health_pb2_grpc.HealthStub(running.channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        running.stop()


def test_a_failed_reload_is_logged_with_its_reason(
    registry: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from scoring.service import ScoringService

    copy = tmp_path / "registry"
    shutil.copytree(registry, copy)
    service = ScoringService(server_settings(copy, tmp_path, ledger_enabled=False))
    service.load()
    write_record(copy, b"{")
    with caplog.at_level(logging.ERROR), pytest.raises(FailedPrecondition):
        service.reload_model()
    (line,) = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name == "scoring.service"
    ]
    assert line.startswith("model reload failed, still serving model v0001, watchlist ")
    assert "registry.json: the registry record is damaged (not valid JSON" in line
    assert "\n" not in line
    service.close()


# --- The pieces ------------------------------------------------------------------------------


@pytest.fixture
def bundle_copy(registry: Path, tmp_path: Path) -> Path:
    target = tmp_path / "v0001"
    shutil.copytree(registry / "v0001", target)
    return target


@pytest.fixture
def unverified(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which bundles passed the child check, so the next load runs it."""
    monkeypatch.setattr(bundles, "_VERIFIED", set())


def test_a_fresh_bundle_records_hashes_and_reference_scores(bundle_copy: Path) -> None:
    doc = json.loads((bundle_copy / META_FILE).read_text(encoding="utf-8"))
    assert doc["format"] == 2
    assert set(doc["integrity"]["files"]) == {MODEL_FILE, REFERENCE_FILE}
    reference = json.loads((bundle_copy / REFERENCE_FILE).read_text(encoding="utf-8"))
    assert len(reference["rows"]) == len(reference["scores"]) == bundles.REFERENCE_ROWS
    scores = np.array(reference["scores"])
    assert np.isfinite(scores).all()
    assert scores.max() > scores.min()  # spread over the score range, not one leaf
    assert load_bundle(bundle_copy).version == "v0001"


def test_a_bundle_without_a_manifest_is_refused_with_how_to_retrain(bundle_copy: Path) -> None:
    edit_meta(bundle_copy, to_format_1)
    with pytest.raises(ModelError) as caught:
        load_bundle(bundle_copy)
    message = caught.value.message
    assert "bundle.json: bundle v0001 has no integrity manifest (format 1" in message
    assert f"centinela train --data DIR --registry {bundle_copy.parent} --promote" in message


def test_a_real_lightgbm_abort_is_taken_by_the_child(bundle_copy: Path, unverified: None) -> None:
    edit_model(bundle_copy, first_tree_num_leaves)
    reseal(bundle_copy)
    with pytest.raises(ModelError, match=r"LightGBM crashed \(SIG[A-Z]+\) loading the model"):
        load_bundle(bundle_copy)


def test_an_abort_in_the_child_is_a_model_error(
    bundle_copy: Path, unverified: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        bundles, "_child_command", lambda out: [sys.executable, "-c", "import os; os.abort()"]
    )
    with pytest.raises(ModelError, match=r"model\.txt: LightGBM crashed \(SIGABRT\)"):
        load_bundle(bundle_copy)


def test_a_child_that_hangs_is_stopped(
    bundle_copy: Path, unverified: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundles, "CHILD_TIMEOUT_S", 0.5)
    monkeypatch.setattr(
        bundles, "_child_command", lambda out: [sys.executable, "-c", "import time; time.sleep(30)"]
    )
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"did not finish within 0\.5 s"):
        load_bundle(bundle_copy)
    assert time.monotonic() - started < 10


def test_a_child_that_fails_reports_lightgbms_words(
    bundle_copy: Path, unverified: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "import sys; print('[LightGBM] [Fatal] Unknown token'); sys.exit(2)"
    monkeypatch.setattr(bundles, "_child_command", lambda out: [sys.executable, "-c", script])
    with pytest.raises(ModelError, match=r"cannot read the model \(\[LightGBM\] \[Fatal\] Unknown"):
        load_bundle(bundle_copy)


def test_the_child_check_runs_once_per_verified_manifest(
    bundle_copy: Path, unverified: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = bundles._run_child

    def counting(path: Path, text: str, rows: np.ndarray) -> list[float]:
        calls.append(path)
        return real(path, text, rows)

    monkeypatch.setattr(bundles, "_run_child", counting)
    load_bundle(bundle_copy)
    load_bundle(bundle_copy)
    assert len(calls) == 1
    edit_meta(bundle_copy, set_calibration(1.5))
    reseal(bundle_copy)
    with pytest.raises(ModelError, match="reference inputs differ"):
        load_bundle(bundle_copy)
    assert len(calls) == 2


def test_save_bundle_refuses_a_model_with_nan_leaves(bundle_copy: Path, tmp_path: Path) -> None:
    good = load_bundle(bundle_copy)
    nan_text = nan_leaves(good.booster.model_to_string())

    class NanModel:  # never handed to LightGBM: the scan refuses it first
        def model_to_string(self) -> str:
            return nan_text

    rows = json.loads((bundle_copy / REFERENCE_FILE).read_text(encoding="utf-8"))["rows"]
    matrix = np.array([[np.nan if v is None else v for v in row] for row in rows])
    with pytest.raises(ModelError, match="not finite numbers"):
        bundles.save_bundle(tmp_path / "v0002", NanModel(), good.meta, matrix)  # type: ignore[arg-type]
    assert not (tmp_path / "v0002").exists()


def test_registry_record_damage_names_the_file(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.history() == []
    for data, problem in [
        (b"", "(empty)"),
        (b"[1, 2]", "not of the form"),
        (b'{"history": ["v0001", 7]}', "not of the form"),
        (b"\xff", "invalid UTF-8 at byte offset 0"),
    ]:
        write_record(tmp_path, data)
        with pytest.raises(FailedPrecondition, match=re.escape(problem)) as caught:
            registry.promoted()
        assert str(tmp_path / "registry.json") in caught.value.message
    (tmp_path / "registry.json").unlink()
    (tmp_path / "registry.json").mkdir()
    with pytest.raises(FailedPrecondition, match="cannot read the registry record"):
        registry.history()


def test_watchlist_and_rules_readers_name_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.yaml"
    path.write_bytes(b"version: x\nentries:\n  - id: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"byte 0xe9 at offset 31 \(line 3\) is invalid"):
        load_watchlist(path)
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(SHIPPED_RULES.replace(b"version:", b"\x01version:", 1))
    with pytest.raises(ConfigError, match=r"rules\.yaml: not valid YAML"):
        load_rules(rules, load_watchlist())
