"""The prepared-prefix signing path: the same TBS_Sign bytes, signatures that verify, HSM-style signers unchanged."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from trustsvc.algorithms.signer import PreparedPrefix, Signer, SoftwareSigner
from trustsvc.seal.parse import parse_signature
from trustsvc.seal.picture import render_png
from trustsvc.seal.report import Verdict
from trustsvc.seal.sign import PREFIX_CACHE, SealSigner
from trustsvc.seal.verify import verify

from .test_seal_support import make_setup


class PlainSigner(Signer):
    """Implements only ``sign`` (as an HSM signer does): uses the default sign_with_prefix."""

    def __init__(self, inner: SoftwareSigner) -> None:
        super().__init__(inner.public_key, certificate_chain=inner.certificate_chain)
        self.inner = inner
        self.messages: list[bytes] = []

    def sign(self, message: bytes) -> bytes:
        self.messages.append(message)
        return self.inner.sign(message)


def test_software_sm2_prefix_signature_verifies() -> None:
    signer = SoftwareSigner.generate("sm2")
    prefix = signer.prepare_prefix(b"P" * 5000)
    assert prefix.state is not None
    for suffix in (b"", b"s", b"x" * 200):
        signer.verifier().verify(b"P" * 5000 + suffix, signer.sign_with_prefix(prefix, suffix))
    other = SoftwareSigner.generate("sm2")  # a prefix prepared by another key is never used with its state
    other.verifier().verify(b"P" * 5000 + b"z", other.sign_with_prefix(prefix, b"z"))


def test_default_and_non_sm2_paths() -> None:
    ec = SoftwareSigner.generate("ec-p256")
    prefix = ec.prepare_prefix(b"abc")
    assert prefix.state is None
    ec.verifier().verify(b"abcdef", ec.sign_with_prefix(prefix, b"def"))
    plain = PlainSigner(SoftwareSigner.generate("sm2"))
    sig = plain.sign_with_prefix(PreparedPrefix(b"abc"), b"def")
    assert plain.messages == [b"abcdef"]
    plain.verifier().verify(b"abcdef", sig)


@pytest.mark.parametrize("software", [True, False], ids=["software", "hsm-style"])
def test_seal_signatures_over_varying_property_info(software: bool) -> None:
    s = make_setup()
    signer = s.holder if software else PlainSigner(s.holder)
    seal_signer = SealSigner(s.seal, signer, s.holder_cert)
    # lengths that change TBS_Sign's length; more distinct lengths than the cache holds; repeats
    infos = ["", "a", "/Doc_0/Signs/Sign_0/Signature.xml", "b" * 127, "c" * 128, "d" * 300] + [
        "e" * n for n in range(PREFIX_CACHE + 2)] + ["a", ""]
    for info in infos:
        der = seal_signer.sign_document(b"doc", info)
        sig = parse_signature(der)
        assert sig.property_info == info
        report = verify(der, document=b"doc")
        assert report.verdict is not Verdict.INVALID, report.to_text()
        s.holder.verifier().verify(sig.tbs_bytes, sig.signature)
        if not software:
            assert signer.messages[-1] == sig.tbs_bytes  # the exact TBS_Sign bytes as sent to the HSM
    assert len(seal_signer._prefixes) <= PREFIX_CACHE


def test_drawn_picture_is_compact_palette_png() -> None:
    data = render_png("某某市人民政府办公室", name="公章", dpi=150)
    img = Image.open(io.BytesIO(data))
    assert (img.format, img.mode) == ("PNG", "P")
    assert "transparency" in img.info
    rgba = img.convert("RGBA")
    assert rgba.getpixel((0, 0))[3] == 0  # transparent corner
    assert rgba.getpixel((img.width // 2, img.height // 2)) == (230, 0, 18, 255)  # the star's centre
    assert len(data) < 12_000


def test_chain_steps_use_path_validation() -> None:
    """seal.maker_chain / signature.signer_chain run trustsvc.pki.validation at the signing time."""
    import datetime as dt

    from trustsvc.pki.certificate import CertificateBuilder
    from trustsvc.seal.report import Status

    s = make_setup()
    sig = SealSigner(s.seal, s.holder, s.holder_cert).sign_document(b"doc", "p")
    report = verify(sig, document=b"doc", trust=[s.maker_cert])
    assert report.status("seal.maker_chain") is Status.PASS, report.to_text()
    assert report.status("signature.signer_chain") is Status.PASS, report.to_text()
    other = make_setup()
    report = verify(sig, document=b"doc", trust=[other.maker_cert])
    assert report.check("signature.signer_chain").reason == "UNTRUSTED_ROOT"
    # the path: through given intermediates, issuers must be CAs
    from trustsvc.seal.report import Report
    from trustsvc.seal.verify import _chain

    now = s.now
    window = (now - dt.timedelta(days=9), now + dt.timedelta(days=9))

    def cert(name: str, key: SoftwareSigner, issuer: tuple[SoftwareSigner, object] | None, ca: bool):  # noqa: ANN202
        b = (CertificateBuilder().subject({"common_name": name}).public_key(key.public_key).validity(*window)
             .key_usage({"key_cert_sign", "digital_signature"} if ca else {"digital_signature"}))
        if ca:
            b = b.basic_constraints(True)
        return b.sign(issuer[0], issuer[1]) if issuer else b.sign(key)

    root_key, mid_key, leaf_key = (SoftwareSigner.generate("sm2") for _ in range(3))
    root = cert("root", root_key, None, True)
    mid = cert("mid", mid_key, (root_key, root), True)
    leaf = cert("leaf", leaf_key, (mid_key, mid), False)
    r = Report("seal", now)
    _chain(r, "with", leaf, [root], now, [mid])
    _chain(r, "without", leaf, [root], now)
    assert r.status("with") is Status.PASS, r.to_text()
    assert r.check("without").reason == "UNTRUSTED_ROOT"
    plain_mid = cert("mid", mid_key, (root_key, root), False)
    _chain(r, "not-ca", leaf, [root], now, [plain_mid])
    assert r.check("not-ca").reason == "NOT_A_CA"
    _chain(r, "expired-then", leaf, [root], now + dt.timedelta(days=30), [mid])
    assert r.check("expired-then").reason == "EXPIRED"
    # the chain is judged at the signing time: later than the anchor's expiry still passes if signed before
    report = verify(sig, document=b"doc", trust=[s.maker_cert], at=now + dt.timedelta(days=3650 + 400))
    assert report.status("signature.signer_chain") is Status.PASS, report.to_text()
