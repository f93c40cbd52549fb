"""Tokens checked by implementations we did not write: PyJWT, jwcrypto and the OpenSSL CLI (SM2)."""

from __future__ import annotations

from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

from tests.interop.tools import run_openssl, sm2_jws_verify_args
from trustsvc.algorithms import PrivateKey, SoftwareSigner, private_key_to_pem
from trustsvc.algorithms.sm2 import signature_to_rs
from trustsvc.token import KeySet, TokenInvalid, TokenIssuer, TokenVerifier, TrustedIssuer
from trustsvc.token.codec import b64encode, dumps

pytestmark = pytest.mark.interop

ISS, AUD = "https://idp.example", "app"
SPECS = {"ES256": "ec-p256", "EdDSA": "ed25519", "RS256": "rsa-2048"}


def _setup(alg: str) -> tuple[PrivateKey, TokenIssuer, TokenVerifier]:
    key = PrivateKey.generate(SPECS.get(alg, "sm2"))
    issuer = TokenIssuer(SoftwareSigner(key), ISS, audience=AUD)
    verifier = TokenVerifier([TrustedIssuer(ISS, KeySet.of((issuer.kid, key.public_key)))], audience=AUD)
    return key, issuer, verifier


def _claims(issuer: TokenIssuer) -> dict[str, object]:
    return issuer.claims("user-7", {"scope": "x"}, acr="2", amr=["pwd"])


@pytest.mark.parametrize("alg", sorted(SPECS))
def test_ours_verify_with_pyjwt(alg: str) -> None:
    key, issuer, _ = _setup(alg)
    token = issuer.issue("user-7", acr="2")
    decoded = pyjwt.decode(token, key.public_key.crypto_key, algorithms=[alg], audience=AUD, issuer=ISS)
    assert decoded["sub"] == "user-7"
    assert pyjwt.get_unverified_header(token)["kid"] == issuer.kid


@pytest.mark.parametrize("alg", sorted(SPECS))
def test_pyjwt_tokens_verify_with_ours(alg: str) -> None:
    key, issuer, verifier = _setup(alg)
    pem = key.crypto_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    token = pyjwt.encode(_claims(issuer), pem, algorithm=alg, headers={"kid": issuer.kid})
    assert verifier.verify(token).claims["sub"] == "user-7"


def test_without_an_audience_we_refuse_what_pyjwt_refuses() -> None:
    """RFC 7519 4.1.3, as PyJWT reads it: a token naming an audience fails a check that names none."""
    key, issuer, verifier = _setup("ES256")
    unnamed = TokenVerifier(verifier.issuers.values())
    for aud in ("app", ["app", "other"]):
        token = issuer.issue("user-7", aud=aud)
        with pytest.raises(pyjwt.InvalidAudienceError):
            pyjwt.decode(token, key.public_key.crypto_key, algorithms=["ES256"], issuer=ISS)
        with pytest.raises(TokenInvalid) as err:
            unnamed.verify(token)
        assert err.value.reason == "AUDIENCE_NOT_GIVEN"
    plain = TokenIssuer(SoftwareSigner(key), ISS).issue("user-7")  # no aud: both accept
    assert pyjwt.decode(plain, key.public_key.crypto_key, algorithms=["ES256"], issuer=ISS)["sub"] == "user-7"
    assert unnamed.verify(plain).claims["sub"] == "user-7"


@pytest.mark.parametrize("alg", sorted(SPECS))
def test_ours_verify_with_jwcrypto(alg: str) -> None:
    key, issuer, _ = _setup(alg)
    token = issuer.issue("user-7")
    # jwcrypto reads our published JWK (for EC/RSA/OKP keys) and checks the signature
    jwk_doc = KeySet.of((issuer.kid, key.public_key)).jwks()["keys"][0]
    verified = jc_jwt.JWT(jwt=token, key=jc_jwk.JWK(**jwk_doc), algs=[alg],
                          check_claims={"iss": ISS, "aud": AUD, "exp": None})
    assert '"sub":"user-7"' in verified.claims


@pytest.mark.parametrize("alg", sorted(SPECS))
def test_jwcrypto_tokens_verify_with_ours(alg: str) -> None:
    key, issuer, verifier = _setup(alg)
    pem = key.crypto_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    token = jc_jwt.JWT(header={"alg": alg, "kid": issuer.kid}, claims=_claims(issuer))
    token.make_signed_token(jc_jwk.JWK.from_pem(pem))
    assert verifier.verify(token.serialize()).claims["acr"] == "2"


def test_our_sm2_token_verifies_with_openssl(tmp_path: Path) -> None:
    key, issuer, _ = _setup("SM2")
    token = issuer.issue("user-7")
    (tmp_path / "pub.pem").write_bytes(key.public_key.to_pem())
    args = sm2_jws_verify_args(tmp_path, token, tmp_path / "pub.pem")
    result = run_openssl(*args)
    assert result.returncode == 0 and b"Signature Verified Successfully" in result.stdout, result.stderr
    (tmp_path / "input").write_bytes((tmp_path / "input").read_bytes() + b"x")  # and OpenSSL does check
    assert run_openssl(*args).returncode != 0


def test_openssl_sm2_jws_verifies_with_ours(tmp_path: Path) -> None:
    key, issuer, verifier = _setup("SM2")
    (tmp_path / "key.pem").write_bytes(private_key_to_pem(key))
    signing_input = b64encode(dumps({"alg": "SM2", "typ": "JWT", "kid": issuer.kid})) + "." + \
        b64encode(dumps(_claims(issuer)))
    (tmp_path / "input").write_bytes(signing_input.encode("ascii"))
    result = run_openssl("pkeyutl", "-sign", "-inkey", str(tmp_path / "key.pem"), "-rawin", "-digest", "sm3",
                      "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "input"),
                      "-out", str(tmp_path / "sig.der"))
    assert result.returncode == 0, result.stderr
    rs = signature_to_rs((tmp_path / "sig.der").read_bytes())
    token = signing_input + "." + b64encode(rs)
    assert verifier.verify(token).claims["sub"] == "user-7"


def test_openssl_sm2_without_distid_is_refused(tmp_path: Path) -> None:
    """OpenSSL 3 signs with an empty SM2 ID unless told otherwise: such a JWS must not verify."""
    from trustsvc.token import TokenInvalid

    key, issuer, verifier = _setup("SM2")
    (tmp_path / "key.pem").write_bytes(private_key_to_pem(key))
    signing_input = b64encode(dumps({"alg": "SM2", "kid": issuer.kid})) + "." + b64encode(dumps(_claims(issuer)))
    (tmp_path / "input").write_bytes(signing_input.encode("ascii"))
    result = run_openssl("pkeyutl", "-sign", "-inkey", str(tmp_path / "key.pem"), "-rawin", "-digest", "sm3",
                      "-in", str(tmp_path / "input"), "-out", str(tmp_path / "sig.der"))
    assert result.returncode == 0, result.stderr
    token = signing_input + "." + b64encode(signature_to_rs((tmp_path / "sig.der").read_bytes()))
    with pytest.raises(TokenInvalid) as info:
        verifier.verify(token)
    assert info.value.reason == "BAD_SIGNATURE"
