"""PKCS#10 certificate signing requests (RFC 2986) for every key type, SM2 included.

Built as asn1crypto structures and signed through a Signer; parsing keeps the received bytes and
the self-signature is checked over the received ``certificationRequestInfo``.
"""

from __future__ import annotations

from collections.abc import Sequence

from asn1crypto import csr as asn1_csr
from asn1crypto import x509

from trustsvc.algorithms import asn1_registry, pem
from trustsvc.algorithms.keypair import PublicKey
from trustsvc.algorithms.signature_algorithm import SignatureAlgorithm
from trustsvc.algorithms.signer import Signer
from trustsvc.errors import InvalidSignature, TrustsvcError
from trustsvc.pki._asn1 import guarded, signature_algorithm_field

asn1_registry.register()


class CertificateRequest:
    """A parsed PKCS#10 request; ``der`` is exactly the bytes received."""

    def __init__(self, der: bytes) -> None:
        def parse() -> tuple[asn1_csr.CertificationRequest, PublicKey]:
            req = asn1_csr.CertificationRequest.load(der, strict=True)
            info = req["certification_request_info"]
            _ = info["subject"].native, info["attributes"].native, req["signature_algorithm"]["algorithm"].dotted
            _ = bytes(req["signature"])
            return req, PublicKey.from_spki(info["subject_pk_info"].dump())

        self.asn1, self.public_key = guarded("PKCS#10 request", "BAD_CSR", parse)
        self.der = der

    @classmethod
    def load(cls, data: bytes) -> CertificateRequest:
        """From PEM ('CERTIFICATE REQUEST') or DER."""
        return cls(pem.der_of(data, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"))

    @property
    def subject_name(self) -> x509.Name:
        return self.asn1["certification_request_info"]["subject"]

    @property
    def subject(self) -> str:
        return self.subject_name.human_friendly

    @property
    def common_name(self) -> str:
        return str(self.subject_name.native.get("common_name", ""))

    @property
    def signature_algorithm_oid(self) -> str:
        return self.asn1["signature_algorithm"]["algorithm"].dotted

    @property
    def requested_extensions(self) -> list[dict[str, object]]:
        """Extensions from an extensionRequest attribute, as asn1crypto natives."""
        out: list[dict[str, object]] = []
        for attr in self.asn1["certification_request_info"]["attributes"]:
            if attr["type"].native == "extension_request":
                for exts in attr["values"]:
                    out.extend(ext.native for ext in exts)
        return out

    def verify(self) -> None:
        """Raise InvalidSignature unless the request is signed by its own key (over the received bytes)."""
        try:
            algorithm = SignatureAlgorithm.parse(self.signature_algorithm_oid)
        except TrustsvcError:
            raise InvalidSignature(f"CSR signature algorithm {self.signature_algorithm_oid} is not supported",
                                   reason="UNSUPPORTED_ALGORITHM") from None
        tbs = self.asn1["certification_request_info"].dump()
        try:
            self.public_key.verify(algorithm, tbs, bytes(self.asn1["signature"]))
        except InvalidSignature:
            raise
        except TrustsvcError as exc:
            raise InvalidSignature(f"CSR signature unusable: {exc.message}", reason=exc.reason) from None

    def to_pem(self) -> bytes:
        return pem.encode("CERTIFICATE REQUEST", self.der)

    def __repr__(self) -> str:
        return f"CertificateRequest({self.subject!r})"


def build_csr(signer: Signer, subject: x509.Name | dict[str, str] | str, *,
              dns: Sequence[str] = (), ips: Sequence[str] = ()) -> CertificateRequest:
    """A PKCS#10 request for ``signer``'s key, signed by it; SANs go in an extensionRequest."""
    if isinstance(subject, str):
        subject = {"common_name": subject}
    name = subject if isinstance(subject, x509.Name) else x509.Name.build(subject, use_printable=False)
    attributes = []
    if dns or ips:
        names = ([x509.GeneralName(name="dns_name", value=d) for d in dns]
                 + [x509.GeneralName(name="ip_address", value=i) for i in ips])
        attributes.append({"type": "extension_request", "values": [[
            {"extn_id": "subject_alt_name", "critical": False, "extn_value": names}]]})
    info = asn1_csr.CertificationRequestInfo({
        "version": "v1",
        "subject": name,
        "subject_pk_info": x509.PublicKeyInfo.load(signer.public_key.spki),
        "attributes": attributes,
    })
    signature = signer.sign(info.dump())
    req = asn1_csr.CertificationRequest({
        "certification_request_info": info,
        "signature_algorithm": signature_algorithm_field(signer),
        "signature": signature,
    })
    return CertificateRequest(req.dump())
