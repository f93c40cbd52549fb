"""Who may do what: a TOML policy mapping client identities to operations, keys and seals.

```toml
[clients."cn=ops-admin"]          # or "uri=spiffe://gov/ops", or a bare CN ("ops-admin" = "cn=ops-admin")
admin = true                      # may call KeyService (and everything else)

[clients."cn=licence-portal"]
operations = ["SignatureService/*", "TokenService/IssueToken", "DocumentService/SignPdf"]
keys = ["licence-*"]              # fnmatch patterns over key names
seals = ["*"]
```
An identity not listed, an operation, key or seal not matched: PERMISSION_DENIED with a reason.
Health and reflection need only an authenticated certificate. Decisions are memoised per
(identity, operation/key/seal) in the Policy object, which is replaced whole when the file changes.

The file is checked strictly, since a mistake in it must never grant more than written: a file that
cannot be read or parsed, a missing ``[clients]`` table (an empty file), keys other than ``clients``
at the top level, a client that is not a table, a field other than ``admin``, ``operations``,
``keys`` and ``seals``, an ``admin`` that is not a boolean (``admin = "false"`` would otherwise be
true), a pattern list that is a bare string (``keys = "licence-*"`` would otherwise be split into
characters, one of them ``*``), an empty pattern, an empty identity, and two entries naming the same
identity (``"Admin"`` and ``"cn=admin"``) are all a ``PolicyError`` (reason ``BAD_POLICY``) whose
message names the client and the field.

Identities: ``cn=<common name>`` (compared without regard to case) and ``uri=<SAN URI>`` (compared
exactly); a name with neither prefix is a common name. A certificate's CN is only ever looked up as
``cn=...``, so a certificate whose CN is literally ``uri=...`` or ``cn=admin`` matches nothing else.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trustsvc.errors import InvalidInput, PolicyDenied

ADMIN_SERVICES = ("KeyService",)
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                 "grpc.reflection.v1.ServerReflection")
RULE_FIELDS = ("admin", "operations", "keys", "seals")


class PolicyError(InvalidInput):
    """The policy file is malformed; the message names the client and field at fault."""

    reason = "BAD_POLICY"


@dataclasses.dataclass(frozen=True)
class Identity:
    """The caller, from its client certificate."""

    common_name: str
    uris: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """The policy entries this identity may match, in order: its CN, then its SAN URIs."""
        return ([f"cn={self.common_name.lower()}"] if self.common_name else []) + [f"uri={u}" for u in self.uris if u]

    def __str__(self) -> str:
        return f"cn={self.common_name}" if self.common_name else (f"uri={self.uris[0]}" if self.uris else "anonymous")


@dataclasses.dataclass(frozen=True)
class ClientRule:
    admin: bool = False
    operations: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    seals: tuple[str, ...] = ()


def _match(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def normalise_identity(name: str) -> str:
    """The policy's key for an identity: ``cn=<lower-case CN>`` or ``uri=<URI>``; a bare name is a CN."""
    prefix, sep, value = name.partition("=")
    if sep and prefix.lower() == "uri":
        return f"uri={value}"
    if sep and prefix.lower() == "cn":
        return f"cn={value.lower()}"
    return f"cn={name.lower()}"


def _patterns(where: str, field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise PolicyError(f"{where}: {field} must be a list of patterns (e.g. {field} = [\"...\"]), "
                          f"not {type(value).__name__} {value!r:.60}")
    for item in value:
        if not isinstance(item, str):
            raise PolicyError(f"{where}: {field} must hold strings, not {type(item).__name__} {item!r:.60}")
        if not item.strip():
            raise PolicyError(f"{where}: {field} holds an empty pattern")
    return tuple(value)


def _rule(where: str, rule: Any) -> ClientRule:
    if not isinstance(rule, dict):
        raise PolicyError(f"{where} must be a table with {', '.join(RULE_FIELDS)}, not {type(rule).__name__}")
    unknown = sorted(str(k) for k in rule if k not in RULE_FIELDS)
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
                          f"a client has {', '.join(RULE_FIELDS)}")
    admin = rule.get("admin", False)
    if not isinstance(admin, bool):
        raise PolicyError(f"{where}: admin must be true or false, not {type(admin).__name__} {admin!r:.60}")
    return ClientRule(admin, *(_patterns(where, f, rule.get(f, [])) for f in ("operations", "keys", "seals")))


MAX_DECISIONS = 8192  # memoised decisions kept per policy (cleared when full)


class Policy:
    def __init__(self, clients: dict[str, ClientRule]) -> None:
        self.clients: dict[str, ClientRule] = {}
        for name, rule in clients.items():
            key = normalise_identity(name)
            if key in ("cn=", "uri="):
                raise PolicyError(f"client {name!r}: an empty identity")
            if key in self.clients:
                raise PolicyError(f"client {name!r}: the identity {key!r} is listed twice")
            self.clients[key] = rule
        self._decisions: dict[tuple[str, Identity, str], ClientRule | PolicyDenied] = {}

    def _decide(self, kind: str, identity: Identity, what: str) -> ClientRule:
        """The memoised outcome of ``_check_<kind>``: the rule, or a fresh copy of the refusal."""
        key = (kind, identity, what)
        found = self._decisions.get(key)
        if found is None:
            try:
                found = getattr(self, f"_check_{kind}")(identity, what)
            except PolicyDenied as exc:
                found = exc
            if len(what) <= 256:  # names from requests are bounded before they are kept
                if len(self._decisions) >= MAX_DECISIONS:
                    self._decisions.clear()
                self._decisions[key] = found
        if isinstance(found, PolicyDenied):
            raise PolicyDenied(found.message, reason=found.reason)
        return found

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read and check a policy file; PolicyError (BAD_POLICY) names what is wrong."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"cannot read policy {path}: {exc}") from None
        try:
            return cls.from_dict(data)
        except PolicyError as exc:
            raise PolicyError(f"policy {path}: {exc.message}") from None

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        """A policy from parsed TOML: ``{"clients": {identity: {admin, operations, keys, seals}}}``."""
        if not isinstance(data, dict):
            raise PolicyError(f"a policy is a table with [clients], not {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k != "clients")
        if unknown:
            raise PolicyError(f"unknown top-level key(s) {', '.join(map(repr, unknown))}; a policy has only "
                              "[clients.\"<identity>\"] tables")
        if "clients" not in data:
            raise PolicyError("no [clients] table (an empty policy); list each client as [clients.\"cn=<name>\"]")
        clients = data["clients"]
        if not isinstance(clients, dict):
            raise PolicyError(f"clients must be a table of identities, not {type(clients).__name__}")
        rules = {}
        for name, rule in clients.items():
            if not isinstance(name, str):
                raise PolicyError(f"client name {name!r:.60} is not a string")
            rules[name] = _rule(f"client {name!r}", rule)
        return cls(rules)

    def rule(self, identity: Identity) -> ClientRule:
        for key in identity.names():
            found = self.clients.get(key)
            if found is not None:
                return found
        raise PolicyDenied(f"client {identity} is not in the policy", reason="UNKNOWN_CLIENT")

    def check_operation(self, identity: Identity, service: str, method: str) -> ClientRule:
        """``service`` is the short name ('SignatureService'), ``method`` the RPC name."""
        return self._decide("operation", identity, f"{service}/{method}")

    def check_key(self, identity: Identity, key: str) -> None:
        self._decide("key", identity, key)

    def check_seal(self, identity: Identity, seal_id: str) -> None:
        self._decide("seal", identity, seal_id)

    def _check_operation(self, identity: Identity, operation: str) -> ClientRule:
        service, _, method = operation.partition("/")
        if service in OPEN_SERVICES:
            return ClientRule()
        rule = self.rule(identity)
        if rule.admin:
            return rule
        if service in ADMIN_SERVICES:
            raise PolicyDenied(f"{service}/{method} needs an admin identity; {identity} is not one",
                               reason="ADMIN_REQUIRED")
        if not _match(rule.operations, f"{service}/{method}"):
            raise PolicyDenied(f"{identity} may not call {service}/{method}", reason="OPERATION_NOT_ALLOWED")
        return rule

    def _check_key(self, identity: Identity, key: str) -> ClientRule:
        rule = self.rule(identity)
        if not rule.admin and not _match(rule.keys, key.partition("@")[0]):
            raise PolicyDenied(f"{identity} may not use key {key!r}", reason="KEY_NOT_ALLOWED")
        return rule

    def _check_seal(self, identity: Identity, seal_id: str) -> ClientRule:
        rule = self.rule(identity)
        if not rule.admin and not _match(rule.seals, seal_id):
            raise PolicyDenied(f"{identity} may not use seal {seal_id!r}", reason="SEAL_NOT_ALLOWED")
        return rule
