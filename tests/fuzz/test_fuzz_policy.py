"""Fuzz the policy loader: whatever the file or table, only PolicyError escapes, and a policy that loads
grants exactly what is written (no coercion of types, no identity matching another kind of name)."""

from __future__ import annotations

import fnmatch
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustsvc.errors import PolicyDenied
from trustsvc.server.policy import ADMIN_SERVICES, Identity, Policy, PolicyError, normalise_identity

FIELDS = ("admin", "operations", "keys", "seals")
SERVICES = ["SignatureService", "KeyService", "TokenService", "SealService", "DocumentService", "X"]
METHODS = ["SignData", "CreateKey", "IssueToken", "RevokeSeal", "SignPdf", "*", ""]
NAMES = ["default", "licence-a", "token", "audit", "a@1", "licence-b@2", "", "1101080000000001", "[x]"]
TMP = Path(tempfile.mkdtemp(prefix="fuzz-policy-"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
pattern = st.sampled_from(["*", "?", "[", "[!a]*", "licence-*", "default", "SignatureService/*", "*/SignData",
                           "KeyService/*", "Token*", "1101*", "a@1"]) | st.text(min_size=1, max_size=10)
patterns = st.lists(pattern.filter(lambda p: p.strip() != ""), max_size=4)
identity_name = st.sampled_from(["cn=a", "CN=A", "b", "uri=spiffe://x/a", "uri=SPIFFE://x/a", "cn=uri=spiffe://x/a",
                                 "uri=cn=a", "cn=cn=a"]) | st.text(min_size=1, max_size=12)
rule = st.fixed_dictionaries({}, optional={"admin": st.booleans(), "operations": patterns, "keys": patterns,
                                           "seals": patterns})
valid_policies = st.dictionaries(identity_name, rule, max_size=5).map(lambda c: {"clients": c})
identities = st.builds(Identity, st.sampled_from(["a", "A", "b", "", "uri=spiffe://x/a", "cn=a", "cn=cn=a",
                                                  "spiffe://x/a"]) | st.text(max_size=8),
                       st.lists(st.sampled_from(["spiffe://x/a", "SPIFFE://x/a", "cn=a", ""]) | st.text(max_size=8),
                                max_size=2).map(tuple))


def _load_text(text: str | bytes) -> Policy | None:
    path = TMP / "policy.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        return Policy.load(path)
    except PolicyError as exc:
        assert exc.reason == "BAD_POLICY" and str(path) in exc.message
        return None


def _from_dict(data: Any) -> Policy | None:
    try:
        return Policy.from_dict(data)
    except PolicyError as exc:
        assert exc.reason == "BAD_POLICY" and exc.message
        return None


def _written(data: dict[str, Any], identity: Identity) -> dict[str, Any] | None:
    """The rule written for the first of the identity's names found (CN first, then URIs), as the file says."""
    by_name: dict[str, dict[str, Any]] = {normalise_identity(k): v for k, v in data["clients"].items()}
    names = ([f"cn={identity.common_name.lower()}"] if identity.common_name else []) + \
        [f"uri={u}" for u in identity.uris if u]
    for name in names:
        if name in by_name:
            return by_name[name]
    return None


def _allowed(fn: Any, *args: str) -> bool:
    try:
        fn(*args)
    except PolicyDenied as exc:
        assert exc.reason in ("UNKNOWN_CLIENT", "ADMIN_REQUIRED", "OPERATION_NOT_ALLOWED", "KEY_NOT_ALLOWED",
                              "SEAL_NOT_ALLOWED")
        return False
    return True


def _matches(written: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in written)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.binary(max_size=200))
def test_random_text(text: str | bytes) -> None:
    _load_text(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='[]."=#\n clientsadmintruefalseoperationskeysseals*/,01', max_size=200))
def test_toml_shaped_text(text: str) -> None:
    policy = _load_text(text)
    if policy is not None:  # it parsed: every rule holds exactly the types written
        for rule in policy.clients.values():
            assert isinstance(rule.admin, bool)
            assert all(isinstance(p, str) and p.strip() for p in rule.operations + rule.keys + rule.seals)


@settings(max_examples=200, deadline=None)
@given(json_values | st.dictionaries(st.sampled_from(["clients", "client", "x"]), json_values, max_size=2)
       | st.dictionaries(identity_name, json_values, max_size=3).map(lambda c: {"clients": c})
       | st.dictionaries(identity_name, st.dictionaries(st.sampled_from([*FIELDS, "operation", "x"]), json_values,
                                                        max_size=4), max_size=3).map(lambda c: {"clients": c}))
def test_arbitrary_tables(data: Any) -> None:
    policy = _from_dict(data)
    if policy is None:
        return
    # it loaded: then every value was exactly of its type, taken as written
    for name, written in data["clients"].items():
        rule = policy.clients[normalise_identity(name)]
        assert rule.admin is written.get("admin", False)
        for field in FIELDS[1:]:
            assert list(getattr(rule, field)) == written.get(field, [])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_policies, identities, st.sampled_from(SERVICES), st.sampled_from(METHODS), st.sampled_from(NAMES))
def test_grants_exactly_what_is_written(data: dict[str, Any], identity: Identity, service: str, method: str,
                                        name: str) -> None:
    policy = _from_dict(data)
    if policy is None:  # only duplicates after normalisation ("cn=a" and "CN=A") or an empty identity
        keys = [normalise_identity(k) for k in data["clients"]]
        assert len(set(keys)) < len(keys) or {"cn=", "uri="} & set(keys)
        return
    written = _written(data, identity)
    admin = bool(written and written.get("admin", False))
    op = f"{service}/{method}"
    expect_op = written is not None and (admin or (service not in ADMIN_SERVICES
                                                   and _matches(written.get("operations", []), op)))
    assert _allowed(policy.check_operation, identity, service, method) == expect_op
    expect_key = written is not None and (admin or _matches(written.get("keys", []), name.partition("@")[0]))
    assert _allowed(policy.check_key, identity, name) == expect_key
    expect_seal = written is not None and (admin or _matches(written.get("seals", []), name))
    assert _allowed(policy.check_seal, identity, name) == expect_seal
    # asked again (memoised): the same answer
    assert _allowed(policy.check_operation, identity, service, method) == expect_op


@settings(max_examples=200, deadline=None)
@given(valid_policies, st.sampled_from(FIELDS), json_values)
def test_one_wrong_value(data: dict[str, Any], field: str, value: Any) -> None:
    """Any value put in one field of one client: refused, or taken exactly as written."""
    if not data["clients"]:
        data["clients"]["cn=victim"] = {}
    name = next(iter(data["clients"]))
    data["clients"][name][field] = value
    policy = _from_dict(data)
    if policy is None:
        return
    rule = policy.clients[normalise_identity(name)]
    if field == "admin":
        assert value is True or value is False
        assert rule.admin is value
    else:
        assert isinstance(value, list) and list(getattr(rule, field)) == value
