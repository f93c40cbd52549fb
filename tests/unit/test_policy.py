"""The per-client policy (trustsvc/server/policy.py): what a valid file grants, deny by default, and
malformed files refused with a PolicyError (BAD_POLICY) naming the problem, never read permissively."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from trustsvc.errors import InvalidInput, PolicyDenied
from trustsvc.server.embedded import DEFAULT_POLICY
from trustsvc.server.policy import Identity, Policy, PolicyError

ROOT = Path(__file__).resolve().parents[2]

POLICY = """
[clients."cn=ops-admin"]
admin = true

[clients."cn=licence-portal"]
operations = ["SignatureService/SignData", "DocumentService/*", "TimeStampService/CreateTimeStamp"]
keys = ["licence-*", "default"]
seals = ["1101*"]

[clients."uri=spiffe://gov.example/ns/portal/sa/login"]
operations = ["TokenService/*"]
keys = ["token"]

[clients.bare-cn]
operations = ["SealService/GetSeal"]

[clients."cn=everything"]
operations = ["*"]
keys = ["*"]
seals = ["*"]

[clients."cn=nothing"]
"""

ADMIN = Identity("ops-admin")
PORTAL = Identity("licence-portal")
LOGIN = Identity("some-pod", ("spiffe://gov.example/ns/portal/sa/login",))
BARE = Identity("bare-cn")
EVERYTHING = Identity("everything")
NOTHING = Identity("nothing")
STRANGER = Identity("stranger", ("spiffe://elsewhere/x",))


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return Policy.load(path)


def denied(fn, *args: object) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyDenied) as exc:
        fn(*args)
    return exc.value.reason


def bad(text: str, tmp_path: Path) -> PolicyError:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as exc:
        Policy.load(path)
    assert exc.value.reason == "BAD_POLICY"
    assert isinstance(exc.value, InvalidInput)  # maps to INVALID_ARGUMENT, never to a permissive policy
    assert str(path) in exc.value.message
    return exc.value


# --- valid policies -------------------------------------------------------------------------------

def test_shipped_policies_load(tmp_path: Path) -> None:
    example = Policy.load(ROOT / "deploy" / "policy.example.toml")
    assert set(example.clients) == {"cn=ops-admin", "cn=licence-portal", "cn=seal-desk",
                                    "uri=spiffe://gov.example/ns/portal/sa/login"}
    embedded = Policy.from_dict(tomllib.loads(DEFAULT_POLICY))
    assert embedded.clients["cn=admin"].admin
    demo = Identity("demo-client")
    embedded.check_operation(demo, "SignatureService", "SignData")
    embedded.check_key(demo, "default")
    embedded.check_key(demo, "demo-x@2")
    assert denied(embedded.check_key, demo, "audit") == "KEY_NOT_ALLOWED"
    assert denied(embedded.check_operation, demo, "KeyService", "CreateKey") == "ADMIN_REQUIRED"
    assert denied(embedded.check_operation, demo, "SealService", "RevokeSeal") == "OPERATION_NOT_ALLOWED"


def test_rules_as_written(policy: Policy) -> None:
    rule = policy.check_operation(PORTAL, "SignatureService", "SignData")
    assert rule.keys == ("licence-*", "default") and not rule.admin
    policy.check_operation(PORTAL, "DocumentService", "SignPdfStream")  # wildcard
    policy.check_operation(PORTAL, "TimeStampService", "CreateTimeStamp")
    assert denied(policy.check_operation, PORTAL, "TimeStampService", "VerifyTimeStamp") == "OPERATION_NOT_ALLOWED"
    assert denied(policy.check_operation, PORTAL, "SignatureService", "SignMessage") == "OPERATION_NOT_ALLOWED"
    assert denied(policy.check_operation, PORTAL, "TokenService", "IssueToken") == "OPERATION_NOT_ALLOWED"


def test_key_and_seal_patterns(policy: Policy) -> None:
    for key in ("licence-a", "licence-", "licence-a@3", "default", "default@1"):
        policy.check_key(PORTAL, key)
    for key in ("licence", "Licence-a", "defaults", "token", "audit", "x-licence-a", "default2@1"):
        assert denied(policy.check_key, PORTAL, key) == "KEY_NOT_ALLOWED", key
    policy.check_seal(PORTAL, "1101080000000001")
    for seal in ("1102080000000001", "", "x1101"):
        assert denied(policy.check_seal, PORTAL, seal) == "SEAL_NOT_ALLOWED", seal
    # no seals written: none allowed
    assert denied(policy.check_seal, LOGIN, "1101080000000001") == "SEAL_NOT_ALLOWED"


def test_admin_may_do_everything(policy: Policy) -> None:
    for service, method in [("KeyService", "CreateKey"), ("KeyService", "DisableKey"), ("SealService", "RevokeSeal"),
                            ("SignatureService", "SignData"), ("AnyService", "Anything")]:
        assert policy.check_operation(ADMIN, service, method).admin
    policy.check_key(ADMIN, "audit")
    policy.check_seal(ADMIN, "anything")


def test_non_admin_never_reaches_key_service(policy: Policy) -> None:
    for who in (PORTAL, EVERYTHING, LOGIN, BARE, NOTHING):
        for method in ("ListKeys", "CreateKey", "RotateKey", "DisableKey"):
            assert denied(policy.check_operation, who, "KeyService", method) == "ADMIN_REQUIRED"
    # operations = ["*"] grants every non-admin operation and nothing more
    policy.check_operation(EVERYTHING, "SealService", "RevokeSeal")
    policy.check_key(EVERYTHING, "audit")


def test_uri_identity_and_bare_cn(policy: Policy) -> None:
    policy.check_operation(LOGIN, "TokenService", "IssueToken")
    policy.check_key(LOGIN, "token")
    assert denied(policy.check_key, LOGIN, "default") == "KEY_NOT_ALLOWED"
    assert denied(policy.check_operation, LOGIN, "SignatureService", "SignData") == "OPERATION_NOT_ALLOWED"
    policy.check_operation(BARE, "SealService", "GetSeal")  # [clients.bare-cn] is cn=bare-cn
    # a URI-only certificate (no CN) is looked up by its URI
    policy.check_operation(Identity("", ("spiffe://gov.example/ns/portal/sa/login",)), "TokenService", "IssueToken")


def test_cn_is_case_insensitive_uri_is_exact(policy: Policy) -> None:
    policy.check_operation(Identity("LICENCE-Portal"), "SignatureService", "SignData")
    upper_uri = Identity("x", ("SPIFFE://gov.example/ns/portal/sa/login",))
    assert denied(policy.check_operation, upper_uri, "TokenService", "IssueToken") == "UNKNOWN_CLIENT"


def test_a_cn_never_poses_as_another_kind_of_name(policy: Policy) -> None:
    # a certificate whose CN spells a policy key must not match that key
    for cn in ("uri=spiffe://gov.example/ns/portal/sa/login", "cn=ops-admin", "CN=ops-admin"):
        assert denied(policy.check_operation, Identity(cn), "TokenService", "IssueToken") == "UNKNOWN_CLIENT", cn
        assert denied(policy.check_operation, Identity(cn), "KeyService", "CreateKey") == "UNKNOWN_CLIENT", cn


def test_deny_by_default(policy: Policy) -> None:
    for check, args in [(policy.check_operation, ("SignatureService", "SignData")), (policy.check_key, ("default",)),
                        (policy.check_seal, ("1101080000000001",))]:
        assert denied(check, STRANGER, *args) == "UNKNOWN_CLIENT"
        assert denied(check, Identity(""), *args) == "UNKNOWN_CLIENT"  # no CN, no URI
    # listed with no fields: a known client that may do nothing
    for service, method in [("SignatureService", "SignData"), ("TokenService", "IssueToken"), ("X", "")]:
        assert denied(policy.check_operation, NOTHING, service, method) == "OPERATION_NOT_ALLOWED"
    assert denied(policy.check_key, NOTHING, "default") == "KEY_NOT_ALLOWED"
    assert denied(policy.check_seal, NOTHING, "1") == "SEAL_NOT_ALLOWED"
    # unknown operations are refused even for a client with wildcards on one service
    assert denied(policy.check_operation, PORTAL, "NoSuchService", "SignData") == "OPERATION_NOT_ALLOWED"
    assert denied(policy.check_operation, PORTAL, "SignatureService", "NoSuchMethod") == "OPERATION_NOT_ALLOWED"


def test_health_and_reflection_need_only_a_certificate(policy: Policy) -> None:
    policy.check_operation(STRANGER, "grpc.health.v1.Health", "Check")
    policy.check_operation(STRANGER, "grpc.reflection.v1.ServerReflection", "ServerReflectionInfo")
    assert not policy.check_operation(STRANGER, "grpc.health.v1.Health", "Watch").admin


def test_memoised_refusals_stay_refusals(policy: Policy) -> None:
    for _ in range(3):
        assert denied(policy.check_key, PORTAL, "audit") == "KEY_NOT_ALLOWED"
        policy.check_key(PORTAL, "default")
    long_key = "licence-" + "x" * 1000  # beyond the memo's bound: decided every time
    policy.check_key(PORTAL, long_key)
    assert denied(policy.check_key, PORTAL, "y" * 1000) == "KEY_NOT_ALLOWED"


def test_empty_clients_table_denies_everything(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[clients]\n")
    p = Policy.load(path)
    assert p.clients == {}
    assert denied(p.check_operation, ADMIN, "SignatureService", "SignData") == "UNKNOWN_CLIENT"


# --- malformed policies ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "words"), [
    ("", ["no [clients] table"]),
    ("# only a comment\n", ["no [clients] table"]),
    ("[clients\n", ["cannot read policy"]),
    ('[clients."cn=a"]\nadmin = tru\n', ["cannot read policy"]),
    ('[clients."cn=a"]\nadmin = true\n[clients."cn=a"]\nadmin = false\n', ["cannot read policy"]),  # TOML dup
    ('[client."cn=a"]\nadmin = true\n', ["unknown top-level key", "'client'"]),
    ('admin = true\n[clients]\n', ["unknown top-level key", "'admin'"]),
    ('clients = ["cn=a"]\n', ["clients must be a table"]),
    ('clients = "cn=a"\n', ["clients must be a table"]),
    ('[clients]\n"cn=a" = true\n', ["client 'cn=a' must be a table", "bool"]),
    ('[clients]\n"cn=a" = ["SignatureService/*"]\n', ["client 'cn=a' must be a table"]),
    ('[clients."cn=a"]\noperation = ["SignatureService/*"]\n', ["client 'cn=a'", "unknown field", "'operation'"]),
    ('[clients."cn=a"]\nadmins = true\n', ["unknown field", "'admins'"]),
    ('[clients."cn=a"]\nkeys = ["k"]\n[clients."cn=a".extra]\nx = 1\n', ["unknown field", "'extra'"]),
    ('[clients."cn=a"]\nadmin = "false"\n', ["client 'cn=a'", "admin must be true or false", "str"]),
    ('[clients."cn=a"]\nadmin = 1\n', ["admin must be true or false", "int"]),
    ('[clients."cn=a"]\nadmin = 0\n', ["admin must be true or false"]),
    ('[clients."cn=a"]\noperations = "SignatureService/*"\n', ["operations must be a list of patterns", "str"]),
    ('[clients."cn=a"]\nkeys = "licence-*"\n', ["keys must be a list of patterns"]),
    ('[clients."cn=a"]\nseals = "*"\n', ["seals must be a list of patterns"]),
    ('[clients."cn=a"]\nkeys = [1, 2]\n', ["keys must hold strings", "int"]),
    ('[clients."cn=a"]\nkeys = [["x"]]\n', ["keys must hold strings", "list"]),
    ('[clients."cn=a"]\nseals = [""]\n', ["seals holds an empty pattern"]),
    ('[clients."cn=a"]\noperations = ["  "]\n', ["operations holds an empty pattern"]),
    ('[clients."cn=a"]\nkeys = {x = 1}\n', ["keys must be a list of patterns", "dict"]),
    ('[clients."cn="]\nadmin = true\n', ["an empty identity"]),
    ('[clients.""]\nadmin = true\n', ["an empty identity"]),
    ('[clients."uri="]\nadmin = true\n', ["an empty identity"]),
    ('[clients."cn=Admin"]\nadmin = false\n[clients.admin]\nadmin = true\n', ["listed twice", "cn=admin"]),
    ('[clients."CN=x"]\nkeys = ["a"]\n[clients."cn=X"]\nkeys = ["b"]\n', ["listed twice"]),
])
def test_malformed_policy_is_refused_with_a_reason(tmp_path: Path, text: str, words: list[str]) -> None:
    message = bad(text, tmp_path).message
    for word in words:
        assert word in message, (word, message)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy .*missing.toml"):
        Policy.load(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match="cannot read policy"):
        Policy.load(tmp_path)  # a directory
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[clients."cn=caf\xe9"]\nadmin = true\n')
    with pytest.raises(PolicyError, match="cannot read policy"):
        Policy.load(path)


@pytest.mark.parametrize("data", [None, [], "clients", 3, {"clients": None}, {"clients": {1: {}}},
                                  {"clients": {"cn=a": None}}, {"clients": {"cn=a": {"keys": ("a",)}}}])
def test_from_dict_refuses_what_toml_cannot_say(data: object) -> None:
    with pytest.raises(PolicyError) as exc:
        Policy.from_dict(data)
    assert exc.value.reason == "BAD_POLICY" and exc.value.message


def test_policy_error_maps_to_invalid_argument() -> None:
    import grpc

    from trustsvc.server.errors import code_for, status_for

    err = PolicyError("client 'cn=a': admin must be true or false")
    assert code_for(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(err).message == err.message
