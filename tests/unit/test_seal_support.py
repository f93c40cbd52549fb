"""Shared helpers for the seal tests: keys, certificates and seals generated per test run."""

from __future__ import annotations

import dataclasses
import datetime as dt

from trustsvc.algorithms.signer import SoftwareSigner
from trustsvc.pki.certificate import Certificate, CertificateBuilder
from trustsvc.seal.make import Picture, SealSpec, SealType, make_seal

UTC = dt.UTC
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND"
       b"\xaeB`\x82")


@dataclasses.dataclass
class Setup:
    maker: SoftwareSigner
    maker_cert: Certificate
    holder: SoftwareSigner
    holder_cert: Certificate
    seal: bytes
    now: dt.datetime


def make_setup(*, es_id: str = "3301060000000001", valid_days: int = 365, start_days: int = -1,
               cert_list_type: int = 1, picture: bytes = PNG, extra_holders: int = 0) -> Setup:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    maker, maker_cert = make_maker(now)
    holder = SoftwareSigner.generate("sm2")
    holder_cert = (CertificateBuilder().subject({"common_name": "某某市人民政府办公室"})
                   .public_key(holder.public_key).key_usage({"digital_signature", "non_repudiation"})
                   .validity(now - dt.timedelta(days=30), now + dt.timedelta(days=3650)).sign(maker, maker_cert))
    holders = [holder_cert.der]
    for _ in range(extra_holders):
        other = SoftwareSigner.generate("sm2")
        holders.append(CertificateBuilder().subject("other").public_key(other.public_key).sign(maker, maker_cert).der)
    seal = seal_listing(holders, maker, maker_cert, es_id=es_id, valid_start=now + dt.timedelta(days=start_days),
                        valid_end=now + dt.timedelta(days=start_days + valid_days), cert_list_type=cert_list_type,
                        picture=picture)
    return Setup(maker, maker_cert, holder, holder_cert, seal, now)


def make_maker(now: dt.datetime | None = None) -> tuple[SoftwareSigner, Certificate]:
    """A seal-making authority: an SM2 key with a self-signed CA certificate."""
    now = now or dt.datetime.now(UTC).replace(microsecond=0)
    maker = SoftwareSigner.generate("sm2")
    maker_cert = (CertificateBuilder().subject({"common_name": "Seal Maker", "organization_name": "测试制章机构"})
                  .public_key(maker.public_key).key_usage({"digital_signature", "key_cert_sign", "crl_sign"})
                  .basic_constraints(True)
                  .validity(now - dt.timedelta(days=30), now + dt.timedelta(days=3650)).sign(maker))
    return maker, maker_cert


def seal_listing(holders: list[bytes], maker: SoftwareSigner, maker_cert: Certificate, *,
                 es_id: str = "3301060000000001", valid_start: dt.datetime | None = None,
                 valid_end: dt.datetime | None = None, cert_list_type: int = 1, picture: bytes = PNG) -> bytes:
    """A v4 official seal made by ``maker`` whose certList holds ``holders`` (DER certificates of any key type)."""
    now = dt.datetime.now(UTC).replace(microsecond=0)
    spec = SealSpec(es_id=es_id, seal_type=SealType.OFFICIAL, name="某某市人民政府办公室", holder_certs=holders,
                    valid_start=valid_start or now - dt.timedelta(days=1),
                    valid_end=valid_end or now + dt.timedelta(days=364),
                    picture=Picture("PNG", picture, 42, 42), cert_list_type=cert_list_type,
                    ext_datas=[("1.2.156.1.2.3", False, b"demo")])
    return make_seal(spec, maker, maker_cert)
