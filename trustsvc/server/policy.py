"""Who may do what: a TOML policy mapping client identities to operations, keys and seals.

```toml
[clients."cn=ops-admin"]          # or "uri=spiffe://gov/ops", or a bare CN
admin = true                      # may call KeyService (and everything else)

[clients."cn=licence-portal"]
operations = ["SignatureService/*", "TokenService/IssueToken", "DocumentService/SignPdf"]
keys = ["licence-*"]              # fnmatch patterns over key names
seals = ["*"]
```
An identity not listed, an operation, key or seal not matched: PERMISSION_DENIED with a reason.
Health and reflection need only an authenticated certificate. Decisions are memoised per
(identity, operation/key/seal) in the Policy object, which is replaced whole when the file changes.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import tomllib
from collections.abc import Iterable
from pathlib import Path

from trustsvc.errors import InvalidInput, PolicyDenied

ADMIN_SERVICES = ("KeyService",)
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                 "grpc.reflection.v1.ServerReflection")


@dataclasses.dataclass(frozen=True)
class Identity:
    """The caller, from its client certificate."""

    common_name: str
    uris: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return [f"cn={self.common_name}", self.common_name] + [f"uri={u}" for u in self.uris]

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


MAX_DECISIONS = 8192  # memoised decisions kept per policy (cleared when full)


class Policy:
    def __init__(self, clients: dict[str, ClientRule]) -> None:
        self.clients = {k.lower() if k.lower().startswith("cn=") else k: v for k, v in clients.items()}
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
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"cannot read policy {path}: {exc}", reason="BAD_POLICY") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> Policy:  # type: ignore[type-arg]
        clients = {}
        for name, rule in data.get("clients", {}).items():
            clients[name] = ClientRule(bool(rule.get("admin", False)), tuple(rule.get("operations", ())),
                                       tuple(rule.get("keys", ())), tuple(rule.get("seals", ())))
        return cls(clients)

    def rule(self, identity: Identity) -> ClientRule:
        for name in identity.names():
            key = name.lower() if name.lower().startswith("cn=") else name
            if key in self.clients:
                return self.clients[key]
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
