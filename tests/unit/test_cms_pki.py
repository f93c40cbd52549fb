"""Test PKI helpers shared by the CMS and TSA tests (keys generated per run), and their own checks."""

from __future__ import annotations

import dataclasses
import datetime as dt

from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.pki.certificate import Certificate, CertificateBuilder

UTC = dt.UTC


@dataclasses.dataclass
class Pki:
    root: Certificate
    root_signer: SoftwareSigner
    leaf: Certificate
    signer: SoftwareSigner  # carries [leaf, root]


def make_pki(spec: str = "sm2", *, tsa: bool = False, root_spec: str | None = None,
             not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Pki:
    """A root CA and a leaf (a TSA leaf with critical EKU timeStamping when ``tsa``)."""
    root_signer = SoftwareSigner.generate(root_spec or spec)
    root = (CertificateBuilder().subject({"common_name": f"Test Root {spec}", "country_name": "CN"})
            .public_key(root_signer.public_key).basic_constraints(True)
            .key_usage({"key_cert_sign", "crl_sign"}).sign(root_signer))
    leaf_key = SoftwareSigner.generate(spec)
    builder = (CertificateBuilder().subject({"common_name": f"Test {'TSA' if tsa else 'Signer'} {spec}",
                                             "country_name": "CN"})
               .public_key(leaf_key.public_key).key_usage({"digital_signature", "non_repudiation"}))
    if not_before or not_after:
        now = dt.datetime.now(UTC)
        builder = builder.validity(not_before or now - dt.timedelta(days=1), not_after or now + dt.timedelta(days=30))
    if tsa:
        builder = builder.extension("extended_key_usage", ["time_stamping"], True)
    leaf = builder.sign(root_signer, root)
    return Pki(root, root_signer, leaf, leaf_key.with_certificates([leaf.der, root.der]))  # type: ignore[arg-type]


def test_make_pki_chain() -> None:
    pki = make_pki("sm2", tsa=True)
    pki.leaf.verify_signed_by(pki.root.public_key)
    assert pki.leaf.extended_key_usage == {"time_stamping"}
