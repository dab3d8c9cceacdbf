"""Exit 0 when Centinela's standard gRPC health service answers SERVING, 1 otherwise.

The container's HEALTHCHECK (installed as ``/usr/local/bin/centinela-healthcheck``), and usable
from any host with ``grpcio`` and ``grpcio-health-checking`` (which Centinela installs):

    centinela-healthcheck                      # 127.0.0.1:$CENTINELA_GRPC_PORT (50051), plaintext
    centinela-healthcheck --target HOST:PORT --ca ca.pem [--server-name localhost]

Health answers without credentials, so no token is needed; with TLS on (``tls_cert_file``) the
probe needs the CA that signed the server certificate (``--ca`` or ``CENTINELA_HEALTH_CA``).
Under mutual TLS the handshake also needs a client certificate (``--cert``/``--key`` or
``CENTINELA_HEALTH_CERT``/``CENTINELA_HEALTH_KEY``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def channel(
    target: str, ca: str | None, cert: str | None, key: str | None, name: str | None
) -> grpc.Channel:
    if ca is None:
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )
    options = [("grpc.ssl_target_name_override", name)] if name else []
    return grpc.secure_channel(target, credentials, options=options)


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    port = env.get("CENTINELA_GRPC_PORT", "50051")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=env.get("CENTINELA_HEALTH_TARGET", f"127.0.0.1:{port}"))
    parser.add_argument("--service", default="", help="Service to ask about ('' = the server).")
    parser.add_argument("--ca", default=env.get("CENTINELA_HEALTH_CA"), help="CA (PEM): use TLS.")
    parser.add_argument("--cert", default=env.get("CENTINELA_HEALTH_CERT"), help="Client cert.")
    parser.add_argument("--key", default=env.get("CENTINELA_HEALTH_KEY"), help="Client key.")
    parser.add_argument(
        "--server-name",
        default=env.get("CENTINELA_HEALTH_SERVER_NAME"),
        help="Name to check the server certificate against, when it is not the target's host.",
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="Seconds to wait.")
    args = parser.parse_args(argv)
    with channel(args.target, args.ca, args.cert, args.key, args.server_name) as ch:
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as error:
            print(f"{args.target}: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{args.target}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    raise SystemExit(main())
