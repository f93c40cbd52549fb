"""The three hooks that make pyHanko 0.38 sign and verify with SM2 (and sign through any trustsvc Signer).

1. SM OIDs and the SM2 curve in asn1crypto: ``trustsvc.algorithms.asn1_registry``.
2. ``TrustsvcPdfSigner``: a ``pyhanko.sign.signers.pdf_cms.Signer`` over a trustsvc Signer (software,
   HSM, remote). For SM2 the mechanism is SM2-with-SM3 (1.2.156.10197.1.501) and the digest SM3.
3. ``Sm2SignatureValidator``: a ``DefaultSignatureValidator`` that also verifies SM2 (default ID).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import cryptography.exceptions
from asn1crypto import algos, keys, x509
from pyhanko.sign.attributes import CMSAttributeProvider
from pyhanko.sign.signers import pdf_cms
from pyhanko_certvalidator.context import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    DefaultSignatureValidator,
    SignatureValidationContext,
)

from trustsvc.algorithms import asn1_registry, oids, sm2
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import KeyType, SignatureAlgorithm
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import InvalidInput, InvalidSignature

asn1_registry.register()

_SM2_SIG_OIDS = (oids.SM2_WITH_SM3, oids.SM2_SIGN)


def signature_mechanism(algorithm: SignatureAlgorithm) -> algos.SignedDigestAlgorithm:
    """The CMS signatureAlgorithm for a trustsvc algorithm."""
    if algorithm is SignatureAlgorithm.RSA_PSS_SHA256:
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
            "salt_length": 32}})
    return algos.SignedDigestAlgorithm({"algorithm": algorithm.oid})


def digest_algorithm(algorithm: SignatureAlgorithm) -> str:
    """The CMS digest algorithm (asn1crypto name) that goes with ``algorithm``."""
    if algorithm is SignatureAlgorithm.ED25519:
        return "sha512"
    return algorithm.digest or "sha256"


def max_signature_size(signer: Signer) -> int:
    """Upper bound of the raw signature length, for placeholders and dry runs."""
    if signer.key_type is KeyType.RSA:
        n = keys.PublicKeyInfo.load(signer.public_key.spki)["public_key"].parsed["modulus"].native
        return (n.bit_length() + 7) // 8
    if signer.key_type is KeyType.ED25519:
        return 64
    size = 48 if signer.algorithm is SignatureAlgorithm.ECDSA_P384_SHA384 else 32
    return 2 * (size + 3) + 2  # SEQUENCE { INTEGER r, INTEGER s } with sign bytes


class TrustsvcPdfSigner(pdf_cms.Signer):
    """pyHanko Signer over a trustsvc Signer; the signer must carry its certificate chain (leaf first).

    ``extra_signed_attrs``: attribute providers added to pyHanko's signed attributes (the seal binding)."""

    def __init__(self, signer: Signer, *, embed_roots: bool = True,
                 extra_signed_attrs: Sequence[CMSAttributeProvider] = ()) -> None:
        if not signer.certificate_chain:
            raise InvalidInput("a PDF signer needs a certificate: give the signer its chain",
                               reason="NO_CERTIFICATE")
        chain = [x509.Certificate.load(der) for der in signer.certificate_chain]
        super().__init__(embed_roots=embed_roots, signature_mechanism=signature_mechanism(signer.algorithm),
                         signing_cert=chain[0], cert_registry=SimpleCertificateStore.from_certs(chain))
        self.trustsvc_signer = signer
        self.md_algorithm = digest_algorithm(signer.algorithm)
        self.extra_signed_attrs = tuple(extra_signed_attrs)

    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> Iterator[CMSAttributeProvider]:
        yield from super()._signed_attr_providers(*args, **kwargs)
        yield from self.extra_signed_attrs

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(max_signature_size(self.trustsvc_signer))
        return self.trustsvc_signer.sign(data)


class Sm2SignatureValidator(DefaultSignatureValidator):
    """pyHanko/certvalidator signature validator that verifies SM2-with-SM3 (default user ID) too."""

    def __init__(self, sm2_id: bytes = sm2.DEFAULT_ID) -> None:
        self.sm2_id = sm2_id

    def validate_signature(self, signature: bytes, signed_data: bytes, public_key_info: keys.PublicKeyInfo,
                           signature_algorithm: algos.SignedDigestAlgorithm,
                           context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT) -> None:
        if signature_algorithm["algorithm"].dotted not in _SM2_SIG_OIDS and not is_sm2_key(public_key_info):
            super().validate_signature(signature, signed_data, public_key_info, signature_algorithm, context)
            return
        if context.prehashed:
            raise cryptography.exceptions.InvalidSignature("SM2 cannot verify a prehashed payload (Z is needed)")
        try:
            PublicKey.from_spki(public_key_info.dump()).verify(
                SignatureAlgorithm.SM2_SM3, signed_data, signature, sm2_id=self.sm2_id)
        except InvalidSignature as exc:
            raise cryptography.exceptions.InvalidSignature(f"{exc.reason}: {exc.message}") from None


def is_sm2_key(public_key_info: keys.PublicKeyInfo) -> bool:
    """True for an id-ecPublicKey on the SM2 curve."""
    try:
        params = public_key_info["algorithm"]["parameters"]
        return public_key_info["algorithm"]["algorithm"].dotted == oids.EC_PUBLIC_KEY and \
            params.name == "named" and params.chosen.dotted == oids.SM2_CURVE
    except (ValueError, KeyError, AttributeError):
        return False


def sm2_failure_reason(public_key_info: keys.PublicKeyInfo, signed_data: bytes, signature: bytes,
                       sm2_id: bytes = sm2.DEFAULT_ID) -> InvalidSignature | None:
    """None if the SM2 signature verifies, else the error naming the likely cause (wrong ID, no Z ...)."""
    try:
        PublicKey.from_spki(public_key_info.dump()).verify(
            SignatureAlgorithm.SM2_SM3, signed_data, signature, sm2_id=sm2_id)
    except InvalidSignature as exc:
        return exc
    return None


def validation_context(trust_roots: list[bytes] | None = None, *, other_certs: list[bytes] = (),  # type: ignore[assignment]
                       crls: list[bytes] = (), allow_fetching: bool = False,  # type: ignore[assignment]
                       revocation_mode: str = "soft-fail", moment: dt.datetime | None = None,
                       **kwargs: object) -> ValidationContext:
    """A certvalidator ValidationContext that verifies SM2 as well (the third hook)."""
    roots = [x509.Certificate.load(r) for r in (trust_roots or [])]
    return ValidationContext(trust_roots=roots, other_certs=[x509.Certificate.load(c) for c in other_certs],
                             crls=list(crls), allow_fetching=allow_fetching,
                             revocation_mode=revocation_mode, moment=moment,
                             signature_validator=Sm2SignatureValidator(), **kwargs)  # type: ignore[arg-type]
