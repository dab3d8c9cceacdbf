"""Centinela from Python: health, one shipment, a bad one, a manifest stream, an outcome.

    pip install -r clients/python/requirements.txt
    python clients/python/example.py --target 127.0.0.1:50051
    python clients/python/example.py --target scoring.example:50051 --ca ca.pem --token "$TOKEN"

Flags fall back to the environment: CENTINELA_TARGET, CENTINELA_TOKEN (sent as
``authorization: Bearer ...``), CENTINELA_CA (PEM: use TLS), CENTINELA_CERT and CENTINELA_KEY
(a client certificate, for mutual TLS), CENTINELA_SERVER_NAME (the name the server certificate
carries, when it is not the target's host). Scoring needs the role ``scorer``, outcomes
``reporter``; health needs nothing.

The stubs come from the .proto files in ``clients/proto`` at run time
(``grpc.protos_and_services``, which needs ``grpcio-tools``); generate them ahead of time
instead with ``python -m grpc_tools.protoc -I clients/proto --python_out=. --grpc_python_out=.
clients/proto/centinela/v1/*.proto``. Health and the ``google.rpc`` error details come from the
``grpcio-health-checking`` and ``googleapis-common-protos`` packages.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

PROTO_DIR = Path(__file__).resolve().parent.parent / "proto"
sys.path.insert(0, str(PROTO_DIR))  # protos_and_services finds .proto files on sys.path
pb, pb_grpc = grpc.protos_and_services("centinela/v1/risk_scoring.proto")  # type: ignore[attr-defined]


def shipment(shipment_id: str, **changes: Any) -> Any:
    """A sea shipment to Manzanillo declared now (live scoring takes current declarations)."""
    s = pb.Shipment(
        shipment_id=shipment_id,
        port_of_entry="MXZLO",
        mode=pb.MODE_SEA,
        origin_country="CN",
        export_country="CN",
        transshipment_ports=["KRPUS"],
        carrier="Pacific Orient Lines",
        conveyance_id="IMO9811000",
        container_id="MSCU1234565",
        shipper=pb.Party(id="SHP-CN-0001", name="Shanghai Jinhua Trading Co.", country="CN"),
        consignee=pb.Party(
            id="CNE-000123",
            name="Distribuidora Química del Pacífico",
            country="MX",
            tax_id="DQP190101AB1",
        ),
        broker_id="BRK-0042",
        goods=[
            pb.GoodsLine(
                hs_code="293337",
                description="1-phenethyl-4-piperidone 99% 25 kg drums",
                cas_numbers=["39742-60-4"],
                quantity=20,
                unit="DRUM",
                gross_weight_kg=520,
                declared_value_usd=18_000,
            )
        ],
    )
    s.declared_at.FromDatetime(datetime.now(UTC))
    for name, value in changes.items():
        setattr(s, name, value)
    return s


def describe(decision: Any) -> str:
    reason = decision.reasons[0].message_en if decision.reasons else "-"
    return (
        f"decision={decision.decision_id} shipment={decision.shipment_id} "
        f"lane={pb.Lane.Name(decision.lane)} risk={decision.risk_score:.4f} "
        f"exam={pb.Exam.Name(decision.exam)} hits={len(decision.watchlist_hits)} reason={reason}"
    )


def field_violations(error: grpc.Call) -> list[str]:
    """The google.rpc.BadRequest field violations of an INVALID_ARGUMENT."""
    status = rpc_status.from_call(error)
    found = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [f"{v.field}: {v.description}" for v in bad.field_violations]
    return found


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    if not args.ca:
        return grpc.insecure_channel(args.target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(args.ca).read_bytes(),
        private_key=Path(args.key).read_bytes() if args.key else None,
        certificate_chain=Path(args.cert).read_bytes() if args.cert else None,
    )
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(args.target, credentials, options=options)


def parse(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=env("CENTINELA_TARGET", "127.0.0.1:50051"))
    parser.add_argument("--token", default=env("CENTINELA_TOKEN"), help="Bearer token.")
    parser.add_argument("--ca", default=env("CENTINELA_CA"), help="CA certificate (PEM): TLS.")
    parser.add_argument("--cert", default=env("CENTINELA_CERT"), help="Client certificate.")
    parser.add_argument("--key", default=env("CENTINELA_KEY"), help="Client certificate key.")
    parser.add_argument("--server-name", default=env("CENTINELA_SERVER_NAME"))
    parser.add_argument("--timeout", type=float, default=10.0, help="Deadline of each call (s).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    with open_channel(args) as channel:
        # 1. Health: no credentials needed. SERVING once a model and watchlist are loaded.
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=args.timeout
        )
        print(f"health: {health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)}")

        # 2. One shipment.
        scoring = pb_grpc.RiskScoringStub(channel)
        decision = scoring.ScoreShipment(
            pb.ScoreShipmentRequest(shipment=shipment(f"PY-{run}-1")),
            timeout=args.timeout,
            metadata=metadata,
        )
        print(f"score: {describe(decision)}")

        # 3. A bad shipment: INVALID_ARGUMENT with a google.rpc.BadRequest naming every field.
        bad = shipment(f"PY-{run}-BAD")
        bad.goods[0].hs_code = "ABC"
        bad.goods[0].gross_weight_kg = -5
        try:
            scoring.ScoreShipment(
                pb.ScoreShipmentRequest(shipment=bad), timeout=args.timeout, metadata=metadata
            )
            print("invalid: unexpectedly accepted")
            return 1
        except grpc.RpcError as error:
            call: Any = error
            print(f"invalid: {call.code().name}")
            for violation in field_violations(call):
                print(f"invalid:   {violation}")

        # 4. A manifest as a stream: one Decision per shipment, in order; a bad shipment gets a
        # Decision carrying its error and the stream goes on.
        manifest = [shipment(f"PY-{run}-M{i}") for i in range(3)]
        manifest[1].port_of_entry = "not a port"

        def requests() -> Iterator[Any]:
            for s in manifest:
                yield pb.ScoreShipmentRequest(shipment=s)

        replies = scoring.ScoreShipments(requests(), timeout=args.timeout, metadata=metadata)
        for i, reply in enumerate(replies):
            if reply.HasField("error"):
                fields = ", ".join(v.field for v in reply.error.field_violations)
                print(f"manifest[{i}]: error {reply.error.code} ({fields})")
            else:
                print(f"manifest[{i}]: {describe(reply)}")

        # 5. The inspection outcome, against the decision id; the same report again is a repeat.
        outcome = pb.RecordOutcomeRequest(
            decision_id=decision.decision_id,
            inspected=True,
            result="negative",
            notes="documentary review, nothing found",
        )
        for _ in range(2):
            ack = scoring.RecordOutcome(outcome, timeout=args.timeout, metadata=metadata)
            print(
                f"outcome: decision={ack.decision_id} version={ack.version} "
                f"duplicate={str(ack.duplicate).lower()}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
