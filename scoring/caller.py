"""Who made a call, as the core records it: transport-free, so the ledger never sees gRPC.

The server authenticates a caller (a client certificate or a bearer token, see
``server/auth.py``) and hands the core a :class:`Caller`; the ledger stores it with every
decision and outcome, so an auditor knows who asked for a decision and whose word an outcome is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = ("scorer", "reporter", "admin")
"""Every role a caller can hold; what each may call is ``server.auth.ROLE_BY_METHOD``."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: ``name``, its ``roles``, and ``method``, how it was
    authenticated: ``mtls`` (client certificate), ``token`` (bearer token) or ``none`` (the
    server runs without authentication)."""

    name: str
    roles: frozenset[str]
    method: str

    def to_json(self) -> dict[str, Any]:
        """The ledger's ``caller`` value."""
        return {"name": self.name, "method": self.method, "roles": sorted(self.roles)}
