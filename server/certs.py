"""Development certificates, and the caller identity a client certificate carries.

``centinela certs --out DIR`` (:func:`make_dev_pki`) makes a certificate authority, a server
certificate and one client certificate per named caller, all with ``cryptography``:

=====================  ==========================================================
``ca.pem``             the development CA (``tls_client_ca_file``; clients trust it)
``ca-key.pem``         its key (0600); kept so a second run issues from the same CA
``server.pem``         server certificate, SAN ``localhost``, ``127.0.0.1`` and ``::1``
``server-key.pem``     its key (0600)
``NAME.pem``           client certificate of caller NAME
``NAME-key.pem``       its key (0600)
=====================  ==========================================================

A client certificate names its caller in the subject common name (``CN=NAME``) and carries one
URI subject alternative name per role, ``spiffe://centinela/role/ROLE``. The server trusts what
its CA signed: the roles in a certificate are the caller's roles (:func:`identity_of`).

Every file is written to a temporary name and renamed, so a server re-reading its certificate
never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from features.errors import ConfigError, InvalidInput
from scoring.caller import ROLES

ROLE_URI_PREFIX = "spiffe://centinela/role/"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_CALLERS = (("scorer", ("scorer",)), ("reporter", ("reporter",)), ("admin", ("admin",)))
CALLER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A caller name is also a file name: letters, digits, ``.``, ``_``, ``-``."""

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Pki:
    """Where :func:`make_dev_pki` wrote each file."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]]  # caller name -> (certificate, key)
    new_ca: bool


def parse_caller(spec: str) -> tuple[str, tuple[str, ...]]:
    """``NAME:ROLE[,ROLE...]`` -> (name, roles); raises InvalidInput naming what is wrong."""
    name, sep, roles_text = spec.partition(":")
    roles = tuple(r.strip() for r in roles_text.split(",") if r.strip())
    if not sep or not CALLER_NAME.match(name) or not roles:
        raise InvalidInput(
            f"caller {spec!r} is not NAME:ROLE[,ROLE...] (a name of letters, digits, '.', "
            f"'_' or '-'; roles among {', '.join(ROLES)})"
        )
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(
            f"caller {name!r}: unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}"
        )
    return name, tuple(dict.fromkeys(roles))


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _write_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, pem, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: x509.Name, issuer: x509.Name, key: PrivateKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Centinela (development)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _load_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, PrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot reuse the CA in {cert_path.parent}: {error}") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_path} is not an EC key made by centinela certs")
    return cert, key


def _new_ca(days: int) -> tuple[x509.Certificate, PrivateKey]:
    key = _new_key()
    name = _name("Centinela development CA")
    cert = (
        _builder(name, name, key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, PrivateKey],
    common_name: str,
    sans: Sequence[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    days: int,
) -> tuple[x509.Certificate, PrivateKey]:
    ca_cert, ca_key = ca
    key = _new_key()
    cert = (
        _builder(_name(common_name), ca_cert.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _host_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_dev_pki(
    out: Path,
    callers: Iterable[tuple[str, Sequence[str]]] = DEFAULT_CALLERS,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = 365,
) -> Pki:
    """Write a development CA (reused if ``out`` has one), a server certificate for ``hosts``
    and a client certificate per (name, roles) in ``callers`` into ``out``. Keys are 0600."""
    out.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = out / "ca.pem", out / "ca-key.pem"
    new_ca = not (ca_cert_path.exists() and ca_key_path.exists())
    if new_ca:
        ca = _new_ca(days)
        _write_key(ca_key_path, ca[1])
        _write_cert(ca_cert_path, ca[0])
    else:
        ca = _load_ca(ca_cert_path, ca_key_path)

    server_cert, server_key = _leaf(
        ca, hosts[0], [_host_name(h) for h in hosts], ExtendedKeyUsageOID.SERVER_AUTH, days
    )
    # Key first: a server that re-reads the pair between the two renames sees a mismatch and
    # keeps its old certificate until the certificate lands.
    _write_key(out / "server-key.pem", server_key)
    _write_cert(out / "server.pem", server_cert)

    clients: dict[str, tuple[Path, Path]] = {}
    for name, roles in callers:
        if not CALLER_NAME.match(name) or name in {"ca", "server"}:
            raise InvalidInput(f"caller name {name!r} cannot be a certificate file name")
        sans = [x509.UniformResourceIdentifier(ROLE_URI_PREFIX + role) for role in roles]
        cert, key = _leaf(ca, name, sans, ExtendedKeyUsageOID.CLIENT_AUTH, days)
        cert_path, key_path = out / f"{name}.pem", out / f"{name}-key.pem"
        _write_key(key_path, key)
        _write_cert(cert_path, cert)
        clients[name] = (cert_path, key_path)
    return Pki(
        ca_cert_path, ca_key_path, out / "server.pem", out / "server-key.pem", clients, new_ca
    )


@lru_cache(maxsize=1024)
def identity_of(cert_pem: bytes) -> tuple[str, frozenset[str]]:
    """(name, roles) a client certificate (PEM) carries: the subject common name and each
    ``spiffe://centinela/role/ROLE`` URI SAN naming a known role. Raises ValueError when the
    certificate has no common name. The signature is the TLS layer's to check, not this."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise ValueError("client certificate has no common name")
    name = str(names[0].value)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return name, frozenset()
    roles = {
        uri.removeprefix(ROLE_URI_PREFIX)
        for uri in sans.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.startswith(ROLE_URI_PREFIX)
    }
    return name, frozenset(roles & set(ROLES))


def key_matches_certificate(cert_pem: bytes, key_pem: bytes) -> bool:
    """Whether the first certificate of ``cert_pem`` is for the private key ``key_pem``."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return bool(
        cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
    )
