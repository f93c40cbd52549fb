"""Issue and verify tokens with every algorithm; each bad input refused with its own reason."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from trustsvc.algorithms import SoftwareSigner
from trustsvc.token import KeySet, TokenInvalid, TokenIssuer, TokenVerifier, TrustedIssuer, introspect
from trustsvc.token.algs import AlgPolicy, to_jws_signature
from trustsvc.token.codec import b64encode, dumps

ISS = "https://idp.gov.example"
AUD = "portal"
NOW = 1_800_000_000
SPECS = {"SM2": "sm2", "ES256": "ec-p256", "EdDSA": "ed25519", "RS256": "rsa-2048"}


@pytest.fixture(scope="module")
def signers() -> dict[str, SoftwareSigner]:
    return {alg: SoftwareSigner.generate(spec) for alg, spec in SPECS.items()}


def make(signers: dict[str, SoftwareSigner], alg: str = "SM2", **kwargs: object) -> tuple[TokenIssuer, TokenVerifier]:
    issuer = TokenIssuer(signers[alg], ISS, audience=AUD, clock=lambda: NOW)
    keys = KeySet.of(*((TokenIssuer(s, ISS).kid, s.public_key) for s in signers.values()))
    verifier = TokenVerifier([TrustedIssuer(ISS, keys, kwargs.pop("policy", AlgPolicy()))],  # type: ignore[arg-type]
                             audience=AUD, clock=lambda: NOW + 1, **kwargs)  # type: ignore[arg-type]
    return issuer, verifier


def forge(signer: SoftwareSigner, header: dict[str, object], claims: dict[str, object]) -> str:
    """A token with any header, signed properly by ``signer``."""
    signing_input = b64encode(dumps(header)) + "." + b64encode(dumps(claims))
    sig = to_jws_signature(signer.algorithm, signer.sign(signing_input.encode()))
    return signing_input + "." + b64encode(sig)


def good_claims(**over: object) -> dict[str, object]:
    claims: dict[str, object] = {"iss": ISS, "sub": "u1", "aud": AUD, "iat": NOW, "nbf": NOW, "exp": NOW + 600,
                                 "jti": "j1"}
    claims.update(over)
    return claims


def reason(verifier: TokenVerifier, token: str | bytes) -> str:
    with pytest.raises(TokenInvalid) as info:
        verifier.verify(token)
    return info.value.reason


@pytest.mark.parametrize("alg", sorted(SPECS))
def test_issue_and_verify_each_algorithm(signers: dict[str, SoftwareSigner], alg: str) -> None:
    issuer, verifier = make(signers, alg)
    token = issuer.issue("user-1", {"scope": "read"}, acr="3", amr=["pwd", "sms"])
    verified = verifier.verify(token)
    assert verified.alg == alg and verified.kid == issuer.kid
    assert verified.claims["sub"] == "user-1" and verified.claims["aud"] == AUD
    assert verified.claims["amr"] == ["pwd", "sms"] and verified.claims["acr"] == "3"
    header = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": alg, "typ": "JWT", "kid": issuer.kid}


@pytest.mark.parametrize("alg", ["SM2", "ES256"])
def test_ecdsa_style_signatures_are_r_s_64_bytes(signers: dict[str, SoftwareSigner], alg: str) -> None:
    issuer, _ = make(signers, alg)
    sig = issuer.issue("u").split(".")[2]
    assert len(sig) == 86  # 64 bytes, unpadded base64url


def test_sm2_aliases_accepted_on_input(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    for alias in ("SM3withSM2", "SM2SM3"):
        assert verifier.verify(forge(signers["SM2"], {"alg": alias, "kid": issuer.kid}, good_claims())).alg == "SM2"
    _, strict = make(signers, policy=AlgPolicy.of(["SM2"], sm2_aliases=[]))
    assert reason(strict, forge(signers["SM2"], {"alg": "SM3withSM2", "kid": issuer.kid}, good_claims())) \
        == "ALG_NOT_ALLOWED"


def test_issue_batch(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    tokens = issuer.issue_batch([issuer.claims(f"u{i}") for i in range(3)])
    assert [verifier.verify(t).claims["sub"] for t in tokens] == ["u0", "u1", "u2"]


def test_alg_none(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    for name in ("none", "None", "NONE"):
        for sig in ("", "AAAA"):
            token = b64encode(dumps({"alg": name, "kid": issuer.kid})) + "." + b64encode(dumps(good_claims()))
            assert reason(verifier, token + "." + sig) == "ALG_NONE"


def test_alg_confusion_hmac_with_public_key(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers, "ES256")
    secret = signers["ES256"].public_key.to_pem()
    signing_input = b64encode(dumps({"alg": "HS256", "kid": issuer.kid})) + "." + b64encode(dumps(good_claims()))
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert reason(verifier, signing_input + "." + b64encode(mac)) == "ALG_NOT_ALLOWED"


def test_alg_confusion_between_key_types(signers: dict[str, SoftwareSigner]) -> None:
    sm2_issuer, verifier = make(signers, "SM2")
    # ES256 header naming the SM2 key: refused before any signature check
    token = forge(signers["ES256"], {"alg": "ES256", "kid": sm2_issuer.kid}, good_claims())
    assert reason(verifier, token) == "ALG_NOT_ALLOWED"


def test_alg_not_in_issuer_allow_list(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers, "RS256", policy=AlgPolicy.of(["SM2", "ES256"]))
    assert reason(verifier, issuer.issue("u")) == "ALG_NOT_ALLOWED"


def test_kid_missing_unknown_and_injected(signers: dict[str, SoftwareSigner]) -> None:
    _, verifier = make(signers)
    s = signers["SM2"]
    assert reason(verifier, forge(s, {"alg": "SM2"}, good_claims())) == "MISSING_KID"
    assert reason(verifier, forge(s, {"alg": "SM2", "kid": "no-such-key"}, good_claims())) == "UNKNOWN_KID"
    for evil in ("../../../../etc/passwd", "' OR '1'='1", "x" * 200, "k\u0000", "a b", "", 7, ["k"]):
        assert reason(verifier, forge(s, {"alg": "SM2", "kid": evil}, good_claims())) == "BAD_KID"


def test_key_selecting_headers_refused(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    for name, value in (("jku", "https://evil.example/jwks"), ("x5u", "https://evil.example/c"),
                        ("jwk", {"kty": "EC"}), ("x5c", ["MII="])):
        token = forge(signers["SM2"], {"alg": "SM2", "kid": issuer.kid, name: value}, good_claims())
        assert reason(verifier, token) == "UNSUPPORTED_HEADER"


def test_crit_unknown(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    token = forge(signers["SM2"], {"alg": "SM2", "kid": issuer.kid, "crit": ["exp2"], "exp2": 1}, good_claims())
    assert reason(verifier, token) == "UNKNOWN_CRIT"


def test_bad_base64(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    h, p, s = issuer.issue("u").split(".")
    assert reason(verifier, f"{h}=.{p}.{s}") == "BAD_BASE64"  # padding
    assert reason(verifier, f"{h}.{p}.{s[:-2]}+/") == "BAD_BASE64"  # standard alphabet
    assert reason(verifier, f"{h}.{p} .{s}") == "BAD_BASE64"
    odd = s + "A" * ((1 - len(s)) % 4)
    assert len(odd) % 4 == 1 and reason(verifier, f"{h}.{p}.{odd}") == "BAD_BASE64"  # 4n+1 length
    last = s[-1]
    twin = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    alt = twin[twin.index(last) ^ 1]  # same leading bits, non-zero unused bit
    assert reason(verifier, f"{h}.{p}.{s[:-1]}{alt}") in ("BAD_BASE64", "BAD_SIGNATURE")
    assert reason(verifier, "a.b") == "MALFORMED_TOKEN"
    assert reason(verifier, "é.b.c".encode()) == "BAD_BASE64"


def test_duplicate_json_keys(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    s = signers["SM2"]
    raw_header = f'{{"alg":"SM2","kid":"{issuer.kid}","kid":"{issuer.kid}"}}'.encode()
    signing_input = b64encode(raw_header) + "." + b64encode(dumps(good_claims()))
    token = signing_input + "." + b64encode(to_jws_signature(s.algorithm, s.sign(signing_input.encode())))
    assert reason(verifier, token) == "DUPLICATE_CLAIM"
    raw_payload = dumps(good_claims())[:-1] + b',"sub":"admin"}'
    signing_input = b64encode(dumps({"alg": "SM2", "kid": issuer.kid})) + "." + b64encode(raw_payload)
    token = signing_input + "." + b64encode(to_jws_signature(s.algorithm, s.sign(signing_input.encode())))
    assert reason(verifier, token) == "DUPLICATE_CLAIM"


def test_bad_json(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    for payload in (b"[1]", b"{", b'{"exp": NaN}', b"\xff"):
        token = b64encode(dumps({"alg": "SM2", "kid": issuer.kid})) + "." + b64encode(payload) + ".AAAA"
        assert reason(verifier, token) == "BAD_JSON"


def test_oversized(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    token = issuer.issue("u", {"blob": "x" * 20000})
    assert reason(verifier, token) == "TOKEN_TOO_LARGE"
    assert reason(verifier, token.encode()) == "TOKEN_TOO_LARGE"


def test_time_checks_with_leeway(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers, leeway=30)
    assert reason(verifier, issuer.issue("u", ttl=-100)) == "EXPIRED"
    assert verifier.verify(issuer.issue("u", ttl=-10))  # within leeway
    s, kid = signers["SM2"], issuer.kid
    assert reason(verifier, forge(s, {"alg": "SM2", "kid": kid}, good_claims(nbf=NOW + 100))) == "NOT_YET_VALID"
    assert verifier.verify(forge(s, {"alg": "SM2", "kid": kid}, good_claims(nbf=NOW + 20)))
    assert reason(verifier, forge(s, {"alg": "SM2", "kid": kid}, good_claims(exp="soon"))) == "BAD_CLAIM"
    assert reason(verifier, forge(s, {"alg": "SM2", "kid": kid}, good_claims(exp=True))) == "BAD_CLAIM"
    h, _, _ = forge(s, {"alg": "SM2", "kid": kid}, good_claims()).split(".")
    raw = dumps(good_claims())[:-1] + b',"exp":1e999}'
    raw = raw.replace(b'"exp":' + str(NOW + 600).encode() + b",", b"")
    signing_input = h + "." + b64encode(raw)
    token = signing_input + "." + b64encode(to_jws_signature(s.algorithm, s.sign(signing_input.encode())))
    assert reason(verifier, token) == "BAD_CLAIM"  # exp parsed as Infinity would never expire


def test_audience_issuer_required(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    s, kid = signers["SM2"], issuer.kid
    assert reason(verifier, issuer.issue("u", aud="other")) == "WRONG_AUDIENCE"
    assert verifier.verify(issuer.issue("u", aud=["other", AUD]))
    assert reason(verifier, forge(s, {"alg": "SM2", "kid": kid}, good_claims(iss="https://evil"))) == "WRONG_ISSUER"
    claims = good_claims()
    del claims["jti"]
    assert reason(verifier, forge(s, {"alg": "SM2", "kid": kid}, claims)) == "MISSING_CLAIM"
    del claims["aud"]
    claims["jti"] = "j"
    assert reason(verifier, forge(s, {"alg": "SM2", "kid": kid}, claims)) == "MISSING_CLAIM"


def test_a_verifier_without_audience_refuses_a_token_that_names_one(signers: dict[str, SoftwareSigner]) -> None:
    """RFC 7519 4.1.3: whoever does not identify itself with a value of "aud" rejects the token (as PyJWT)."""
    issuer, verifier = make(signers)
    unnamed = TokenVerifier(verifier.issuers.values(), audience=None, clock=lambda: NOW + 1)
    assert reason(unnamed, issuer.issue("u", aud="app")) == "AUDIENCE_NOT_GIVEN"
    assert reason(unnamed, issuer.issue("u", aud=["a", "b"])) == "AUDIENCE_NOT_GIVEN"
    any_audience = TokenVerifier(verifier.issuers.values(), any_audience=True, clock=lambda: NOW + 1)  # introspection
    assert any_audience.verify(issuer.issue("u", aud="app")).claims["aud"] == "app"
    assert introspect(any_audience, issuer.issue("u", aud="app"))["active"] is True
    assert introspect(unnamed, issuer.issue("u", aud="app")) == {"active": False}


def test_bad_signature(signers: dict[str, SoftwareSigner]) -> None:
    for alg in SPECS:
        issuer, verifier = make(signers, alg)
        h, p, s = issuer.issue("u").split(".")
        other = issuer.issue("v").split(".")[2]
        assert reason(verifier, f"{h}.{p}.{other}") == "BAD_SIGNATURE"
        short = b64encode(__import__("base64").urlsafe_b64decode(s + "==")[:-3])
        assert reason(verifier, f"{h}.{p}.{short}") == "BAD_SIGNATURE"
    sm2_issuer, verifier = make(signers, "SM2")
    h, p, _ = sm2_issuer.issue("u").split(".")
    assert reason(verifier, f"{h}.{p}.{b64encode(bytes(64))}") == "BAD_SIGNATURE"


def test_introspection_hides_reason(signers: dict[str, SoftwareSigner]) -> None:
    issuer, verifier = make(signers)
    token = issuer.issue("u", {"scope": "a b"})
    answer = introspect(verifier, token)
    assert answer["active"] is True and answer["sub"] == "u" and answer["scope"] == "a b"
    assert introspect(verifier, issuer.issue("u", ttl=-1000)) == {"active": False}
    assert introspect(verifier, "garbage") == {"active": False}


def test_reserved_claims_cannot_be_overridden(signers: dict[str, SoftwareSigner]) -> None:
    issuer, _ = make(signers)
    with pytest.raises(Exception) as info:
        issuer.issue("u", {"iss": "someone-else"})
    assert getattr(info.value, "reason", "") == "RESERVED_CLAIM"


def test_non_finite_extra_claims_refused(signers: dict[str, SoftwareSigner]) -> None:
    issuer, _ = make(signers)
    for bad in ({"x": float("nan")}, {"x": [1, {"y": float("inf")}]}):
        with pytest.raises(Exception) as info:
            issuer.issue("u", bad)
        assert getattr(info.value, "reason", "") == "BAD_CLAIMS"
