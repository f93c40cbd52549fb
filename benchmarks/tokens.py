"""Identity tokens issued and verified per second (one core), per algorithm, in one run beside
PyJWT ES256 and the bare SM2 sign/verify rate on a message the size of a JWS signing input.

Target: bare SM2 sign rate / SM2 token issue rate <= 1.3.

    python -m benchmarks.tokens [--seconds 0.5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

from benchmarks.harness import Check, interleaved, report
from trustsvc.algorithms import PrivateKey, SoftwareSigner
from trustsvc.token import KeySet, NaturalPerson, TokenIssuer, TokenVerifier, TrustedIssuer

ISS, AUD = "https://idp.gov.example", "portal"
SPECS = {"SM2": "sm2", "ES256": "ec-p256", "EdDSA": "ed25519", "RS256": "rsa-2048"}
PERSON = NaturalPerson("U000001", "张三", "111", "11010519491231002X", True)


def jobs() -> tuple[dict[str, Callable[[], object]], int]:
    out: dict[str, Callable[[], object]] = {}
    size = 0
    for alg, spec in SPECS.items():
        key = PrivateKey.generate(spec)
        issuer = TokenIssuer(SoftwareSigner(key), ISS, audience=AUD)
        verifier = TokenVerifier([TrustedIssuer(ISS, KeySet.of((issuer.kid, key.public_key)))], audience=AUD)

        def issue(issuer: TokenIssuer = issuer) -> str:
            return issuer.issue("U000001", person=PERSON, acr="3", amr=["pwd", "sms"])

        token = issue()
        out[f"{alg} token issue"] = issue
        out[f"{alg} token verify"] = functools.partial(verifier.verify, token)
        if alg == "SM2":
            signing_input = token.rsplit(".", 1)[0].encode()
            size = len(signing_input)
            signer = issuer.signer
            der = signer.sign(signing_input)
            bare_verifier = signer.verifier()
            out["SM2 bare sign"] = functools.partial(signer.sign, signing_input)
            out["SM2 bare verify"] = functools.partial(bare_verifier.verify, signing_input, der)
        if alg == "ES256":
            pem = key.crypto_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
            claims = issuer.claims("U000001", person=PERSON, acr="3", amr=["pwd", "sms"])
            pub = key.public_key.crypto_key
            pj_token = pyjwt.encode(claims, pem, algorithm="ES256", headers={"kid": issuer.kid})
            priv = serialization.load_pem_private_key(pem, None)
            out["PyJWT ES256 issue"] = functools.partial(pyjwt.encode, claims, priv, algorithm="ES256",
                                                         headers={"kid": issuer.kid})
            out["PyJWT ES256 verify"] = functools.partial(pyjwt.decode, pj_token, pub, algorithms=["ES256"],
                                                          audience=AUD, issuer=ISS)
    return out, size


def paired(a: Callable[[], object], b: Callable[[], object], *, seconds: float, batch: int = 10) -> float:
    """Time of ``a`` / time of ``b``, alternating small batches so machine noise hits both alike."""
    spent = [0.0, 0.0]
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for i, fn in enumerate((a, b)):
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            spent[i] += time.perf_counter() - start
    return spent[0] / spent[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    work, size = jobs()
    rates = interleaved(work, seconds=args.seconds, rounds=args.rounds)
    r = {k: v.ops_per_s for k, v in rates.items()}
    # The check alternates batches of 10 token issues and 10 bare signatures, so that load on a
    # shared machine hits both alike; the ratio of the interleaved medians is reported beside it.
    cost = paired(work["SM2 token issue"], work["SM2 bare sign"], seconds=args.seconds * args.rounds * 2)
    checks = [Check("SM2 token issue cost / bare SM2 sign cost (paired)", cost, "<=", 1.3)]
    extra = {
        "signing_input_bytes": size,
        "ratios": {
            "bare SM2 sign / SM2 token issue (medians)": r["SM2 bare sign"] / r["SM2 token issue"],
            "SM2 bare verify / SM2 token verify": r["SM2 bare verify"] / r["SM2 token verify"],
            "ES256 token issue / PyJWT ES256 issue": r["ES256 token issue"] / r["PyJWT ES256 issue"],
            "ES256 token verify / PyJWT ES256 verify": r["ES256 token verify"] / r["PyJWT ES256 verify"],
        },
    }
    ok = report("tokens", rates, checks, extra)
    for name, value in extra["ratios"].items():  # type: ignore[attr-defined]
        print(f"  {name}: {value:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
