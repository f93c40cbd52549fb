"""The ``trustsvc token`` commands end to end on a temporary home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.unit.test_seal_cli import stored_state


def run(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str]:
    code = main(["--home", str(home), "token", *args])
    return code, capsys.readouterr().out


def test_issue_verify_revoke_introspect_jwks(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTSVC_DB", raising=False)
    code, out = run(capsys, tmp_path, "issue", "--sub", "alice", "--claims", '{"scope":"read"}', "--aud", "app")
    assert code == 0
    token = out.strip()
    code, out = run(capsys, tmp_path, "verify", token, "--aud", "app")
    result = json.loads(out)
    assert code == 0 and result["alg"] == "SM2" and result["claims"]["scope"] == "read"
    code, out = run(capsys, tmp_path, "verify", token, "--aud", "other")
    assert code == 1 and json.loads(out)["reason"] == "WRONG_AUDIENCE"
    code, out = run(capsys, tmp_path, "verify", token)
    assert code == 1 and json.loads(out)["reason"] == "AUDIENCE_NOT_GIVEN"  # RFC 7519 4.1.3

    code, out = run(capsys, tmp_path, "jwks")
    keys = json.loads(out)["keys"]
    assert code == 0 and keys[0]["crv"] == "SM2" and keys[0]["kid"] == result["kid"]

    code, out = run(capsys, tmp_path, "introspect", token)
    assert json.loads(out)["active"] is True
    jti = result["claims"]["jti"]
    assert run(capsys, tmp_path, "revoke", "--jti", jti)[0] == 0
    code, out = run(capsys, tmp_path, "introspect", token)
    assert json.loads(out) == {"active": False}
    code, out = run(capsys, tmp_path, "verify", token, "--aud", "app")
    assert code == 1 and json.loads(out)["reason"] == "REVOKED"

    token2 = run(capsys, tmp_path, "issue", "--sub", "bob")[1].strip()
    assert run(capsys, tmp_path, "revoke", "--sub", "bob", "--before", "2999-01-01T00:00:00")[0] == 0
    assert json.loads(run(capsys, tmp_path, "verify", token2)[1])["reason"] == "REVOKED"


def test_other_algorithm_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, tmp_path, "issue", "--sub", "x", "--key", "es", "--alg", "ES256")
    assert code == 0
    code, out = run(capsys, tmp_path, "verify", out.strip(), "--key", "es")
    assert code == 0 and json.loads(out)["alg"] == "ES256"
    assert run(capsys, tmp_path, "issue", "--sub", "x", "--key", "es", "--alg", "SM2")[0] == 2
    assert run(capsys, tmp_path, "issue", "--sub", "x", "--claims", "[1]")[0] == 2


def test_verify_other_issuer_from_trust_file_and_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from trustsvc.algorithms import SoftwareSigner
    from trustsvc.token import KeySet, TokenIssuer

    other = TokenIssuer(SoftwareSigner.generate("sm2"), "https://idp.province.example")
    jwks = tmp_path / "province-jwks.json"
    jwks.write_text(json.dumps(KeySet.of((other.kid, other.signer.public_key)).jwks()))
    (tmp_path / "token-trust.json").write_text(json.dumps(
        {"issuers": [{"issuer": "https://idp.province.example", "jwks": str(jwks), "algorithms": ["SM2"]}]}))
    token = other.issue("carol")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(token.encode() + b"\n")))
    code, out = run(capsys, tmp_path, "verify", "-")
    assert code == 0 and json.loads(out)["claims"]["iss"] == "https://idp.province.example"
    code, out = run(capsys, tmp_path, "verify", "--trust", str(tmp_path / "missing.json"), token)
    assert code == 2


def test_token_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """One base64url id in 64 starts with "-", which argparse takes for an option in ``--jti ID``
    (this made test_issue_verify_revoke_introspect_jwks fail now and then)."""
    from trustsvc.token import randomid

    draws = iter([b"\xf8" * 16, b"\x00" * 16])  # the first encodes to "-----...", the second to "AAAA..."
    monkeypatch.setattr(randomid._POOL, "take", lambda n: next(draws))
    assert randomid.token_id() == "A" * 22
    monkeypatch.undo()
    assert not any(randomid.token_id().startswith("-") for _ in range(2000))


def test_revoke_a_jti_that_starts_with_a_dash(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTSVC_DB", raising=False)
    code, out = run(capsys, tmp_path, "revoke", "--jti=-from-another-issuer")
    assert code == 0 and json.loads(out)["revoked"]["jti"] == "-from-another-issuer"


def test_verify_reads_the_revocation_list_and_never_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # regression: verify opened --db read-write and created a missing one, so a mistyped path passed a revoked token
    monkeypatch.delenv("TRUSTSVC_DB", raising=False)
    token = run(capsys, tmp_path, "issue", "--sub", "carol")[1].strip()
    default_db = tmp_path / "trustsvc.db"
    code, out = run(capsys, tmp_path, "verify", token)  # nothing revoked under this home yet: no database
    assert code == 0 and json.loads(out)["revocation_list"] is None and not default_db.exists()

    assert run(capsys, tmp_path, "revoke", "--jti", json.loads(out)["claims"]["jti"])[0] == 0
    before = stored_state(default_db)
    code, out = run(capsys, tmp_path, "verify", token, "--db", f"sqlite:///{default_db}")
    assert code == 1 and json.loads(out)["reason"] == "REVOKED"
    assert stored_state(default_db) == before

    def refused(*args: str) -> str:
        assert main(["--home", str(tmp_path), "token", *args]) == 2
        return str(json.loads(capsys.readouterr().err)["error"])

    typo = tmp_path / "trustsvc-typo.db"
    assert refused("verify", token, "--db", f"sqlite:///{typo}") == "INPUT_NOT_FOUND" and not typo.exists()
    monkeypatch.setenv("TRUSTSVC_DB", str(tmp_path / "other.db"))
    (tmp_path / "other.db").write_bytes(b"")
    assert refused("introspect", token) == "NOT_A_TOKEN_DATABASE"
