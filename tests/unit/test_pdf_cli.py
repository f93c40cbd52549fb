"""`trustsvc pdf sign|batch-sign` with keys from the software keystore and a SoftHSM2 token; outputs checked with
pyHanko's validator directly; user mistakes give exit code 2, a named reason and no output file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import read_certification_data

from cli.main import main
from tests.conftest import require_tool
from tests.integration.hsm_helpers import PIN, SOFTHSM_MODULE, make_softhsm
from tests.unit.test_pdf_appearance import _assert_in_box, _red_pixels
from tests.unit.test_pdf_signing import pyhanko_pades_level
from trustsvc.keys.base import KeyStore
from trustsvc.keys.factory import open_keystore
from trustsvc.pdf.devkit import DevIdentity, dev_identity, licence_pdf
from trustsvc.pdf.metadata import read_metadata
from trustsvc.pdf.pyhanko_sm2 import validation_context
from trustsvc.pdf.verify import verify_pdf
from trustsvc.pki.certificate import CertificateBuilder

PASSPHRASE = "correct horse battery staple"
BOX = (300.0, 400.0, 150.0, 150.0)
LICENCE = {"licence_type": "营业执照", "licence_number": "91110000MA01ABCD1X", "holder_name": "北京某某科技有限公司",
           "holder_id": "91110000MA01ABCD1X", "issuing_authority": "北京市市场监督管理局", "issue_date": "2024-05-01"}


@dataclasses.dataclass
class Env:
    home: Path
    roots: dict[str, bytes]
    args: list[str]  # --home ... before "pdf"
    key_args: list[str]  # passphrase options after the action
    cas: dict[str, DevIdentity] = dataclasses.field(default_factory=dict)  # the CAs that certified the keys


def _certify_key(store: KeyStore, name: str, spec: str, ca: DevIdentity, *, tsa: bool = False) -> None:
    """Create key ``name`` and store a certificate chain for it issued by the dev CA ``ca``."""
    info = store.create(name, spec)
    builder = CertificateBuilder().subject({"common_name": f"trustsvc test {name}"}).public_key(info.public_key)
    if tsa:
        builder = builder.key_usage({"digital_signature"}).extension("extended_key_usage", ["time_stamping"], True)
    else:
        builder = builder.key_usage({"digital_signature", "non_repudiation"})
    cert = builder.sign(ca.root_signer, ca.root)
    store.set_certificate_chain(name, info.version, (cert.der, ca.root.der))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    home = tmp_path_factory.mktemp("home")
    (home / "passphrase").write_text(PASSPHRASE + "\n")
    store = open_keystore("soft", home, passphrase=PASSPHRASE.encode())
    cas = {k: dev_identity(k) for k in ("sm2", "ecdsa")}
    _certify_key(store, "licence-sm2", "sm2", cas["sm2"])
    _certify_key(store, "licence-ec", "ec-p256", cas["ecdsa"])
    _certify_key(store, "tsa-ec", "ec-p256", cas["ecdsa"], tsa=True)
    store.create("no-cert", "ec-p256")
    return Env(home, {k: v.root.der for k, v in cas.items()}, ["--home", str(home)],
               ["--passphrase-file", str(home / "passphrase")], cas)


@pytest.fixture
def pdf_in(tmp_path: Path) -> Path:
    path = tmp_path / "licence.pdf"
    path.write_bytes(licence_pdf())
    return path


def _error(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    return json.loads(capsys.readouterr().err.strip().splitlines()[-1])


def test_sign_with_soft_keystore_key(env: Env, pdf_in: Path, tmp_path: Path) -> None:
    (tmp_path / "licence.json").write_text(json.dumps(LICENCE, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), "--key", "licence-ec", *env.key_args,
                 "--certify", "2", "--licence", str(tmp_path / "licence.json"), "--seal-org", "北京某某科技有限公司",
                 "--box", "300,400,150,150"]) == 0
    data = out.read_bytes()
    assert pyhanko_pades_level(data, [env.roots["ecdsa"]]) == "B-B"
    reader = PdfFileReader(io.BytesIO(data))
    assert reader.embedded_signatures[0].signer_cert.subject.native["common_name"] == "trustsvc test licence-ec"
    assert read_certification_data(reader).permission.value == 2
    assert read_metadata(reader).holder_name == "北京某某科技有限公司"
    _assert_in_box(_red_pixels(data, tmp_path), BOX)


def test_sign_sm2_key_b_lta_with_store_tsa_key(env: Env, pdf_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), "--key", "licence-sm2", *env.key_args,
                 "--level", "B-LTA", "--tsa-key", "tsa-ec"]) == 0
    sig = PdfFileReader(io.BytesIO(out.read_bytes())).embedded_signatures[0]
    status = validate_pdf_signature(sig, validation_context(list(env.roots.values())))  # pyHanko + the SM2 hook
    assert status.intact and status.valid and status.trusted
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
    assert sig.signer_info["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert len(PdfFileReader(io.BytesIO(out.read_bytes())).embedded_timestamp_signatures) == 1


def test_b_lt_embeds_the_crls_given_and_verify_uses_them(env: Env, pdf_in: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`pdf sign --level B-LT --crl` puts the CRL in the DSS; `pdf verify` then checks revocation from the document
    alone; a file that is not a CRL is refused before signing (exit 2, BAD_CRL)."""
    from trustsvc.pki.crl import build_crl

    ca = env.cas["ecdsa"]
    (tmp_path / "ca.crl").write_bytes(build_crl(ca.root_signer, ca.root, [], crl_number=1).to_pem())
    out = tmp_path / "lt.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), "--key", "licence-ec", *env.key_args,
                 "--level", "B-LT", "--tsa-key", "tsa-ec", "--crl", str(tmp_path / "ca.crl")]) == 0
    (tmp_path / "root.der").write_bytes(env.roots["ecdsa"])
    capsys.readouterr()
    assert main(["pdf", "verify", str(out), "--trust", str(tmp_path / "root.der"), "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["signatures"][0]["checks"]}
    assert checks["revocation"]["ok"] is True, checks["revocation"]
    bad = tmp_path / "bad.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(bad), "--key", "licence-ec", *env.key_args,
                 "--level", "B-LT", "--tsa-key", "tsa-ec", "--crl", str(pdf_in)]) == 2
    assert _error(capsys)["error"] == "BAD_CRL" and not bad.exists()


def test_sign_ecdsa_b_lta_validates_in_pyhanko(env: Env, pdf_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), "--key", "licence-ec", *env.key_args,
                 "--level", "b-lta", "--tsa-key", "tsa-ec"]) == 0
    assert pyhanko_pades_level(out.read_bytes(), [env.roots["ecdsa"]]) == "B-LTA"


def test_batch_sign_directory(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"l{i}.pdf").write_bytes(licence_pdf())
    (src / "notes.txt").write_text("not signed")
    assert main([*env.args, "pdf", "batch-sign", str(src), "-o", str(tmp_path / "out"), "--key", "licence-ec",
                 *env.key_args, "--workers", "2", "--seal-png", str(_seal_png(tmp_path)), "--box",
                 "300,400,150,150"]) == 0
    assert "[" not in capsys.readouterr().err  # no progress bar when stderr is not a terminal
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outputs] == ["l0.pdf", "l1.pdf", "l2.pdf"]
    for p in outputs:
        assert pyhanko_pades_level(p.read_bytes(), [env.roots["ecdsa"]]) == "B-B"
    _assert_in_box(_red_pixels(outputs[0].read_bytes(), tmp_path), BOX)


def test_batch_bad_file_is_an_input_error(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.pdf").write_bytes(licence_pdf())
    (src / "broken.pdf").write_bytes(b"not a pdf")
    assert main([*env.args, "pdf", "batch-sign", str(src), "-o", str(tmp_path / "out"), "--key", "licence-ec",
                 *env.key_args, "--workers", "0"]) == 2
    assert "broken.pdf: PDF_NOT_PDF" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.pdf"]


def test_batch_licences_per_file(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    licences = {}
    for i in range(3):
        (src / f"l{i}.pdf").write_bytes(licence_pdf())
        licences[f"l{i}.pdf"] = {**LICENCE, "licence_number": f"9111000000000000{i}X", "holder_name": f"持证单位{i}"}
    manifest = tmp_path / "licences.json"
    manifest.write_text(json.dumps(licences, ensure_ascii=False), encoding="utf-8")
    for level in ("B-B", "B-T"):  # the fast path and sign_pdf
        out = tmp_path / f"out-{level}"
        assert main([*env.args, "pdf", "batch-sign", str(src), "-o", str(out), "--key", "licence-ec", *env.key_args,
                     "--workers", "0", "--licences", str(manifest), "--level", level, "--tsa-key", "tsa-ec"]) == 0
        for i in range(3):
            data = (out / f"l{i}.pdf").read_bytes()
            assert pyhanko_pades_level(data, [env.roots["ecdsa"]]) == level
            meta = read_metadata(PdfFileReader(io.BytesIO(data)))
            assert meta is not None
            assert (meta.licence_number, meta.holder_name) == (f"9111000000000000{i}X", f"持证单位{i}")


@pytest.mark.parametrize("manifest, words", [
    ({"l0.pdf": LICENCE}, "no licence metadata for ['l1.pdf']"),
    ({"l0.pdf": LICENCE, "l1.pdf": LICENCE, "other.pdf": LICENCE}, "files not given: ['other.pdf']"),
    ({"l0.pdf": LICENCE, "l1.pdf": {**LICENCE, "issue_date": "1 May 2024"}}, "l1.pdf: issue_date"),
    ({"l0.pdf": LICENCE, "l1.pdf": {**LICENCE, "colour": "red"}}, "unknown fields ['colour']"),
    (["l0.pdf"], "must hold a JSON object"),
])
def test_batch_licences_refused_before_signing(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               manifest: object, words: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        (src / f"l{i}.pdf").write_bytes(licence_pdf())
    (tmp_path / "m.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert main([*env.args, "pdf", "batch-sign", str(src), "-o", str(tmp_path / "out"), "--key", "licence-ec",
                 *env.key_args, "--workers", "0", "--licences", str(tmp_path / "m.json")]) == 2
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert error["error"] == "BAD_LICENCE_METADATA" and words in error["message"], error
    assert not (tmp_path / "out").exists()


def test_batch_with_seal_text_signs_through_the_ordinary_path(env: Env, tmp_path: Path) -> None:
    # was refused with FAST_SEAL_TEXT: the text's font is subset per document, so these files take sign_pdf
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        (src / f"l{i}.pdf").write_bytes(licence_pdf())
    assert main([*env.args, "pdf", "batch-sign", str(src), "-o", str(tmp_path / "out"), "--key", "licence-ec",
                 *env.key_args, "--workers", "0", "--seal-png", str(_seal_png(tmp_path)), "--box", "300,400,150,150",
                 "--seal-text", "签章人 %(signer)s"]) == 0
    pdffonts = require_tool("pdffonts")
    for i in range(2):
        out = tmp_path / "out" / f"l{i}.pdf"
        assert pyhanko_pades_level(out.read_bytes(), [env.roots["ecdsa"]]) == "B-B"
        listing = subprocess.run([pdffonts, str(out)], capture_output=True, text=True, check=True).stdout
        assert "WenQuanYi" in listing, listing  # the text's CJK font, embedded
        _assert_in_box(_red_pixels(out.read_bytes(), tmp_path), BOX)


def test_batch_refuses_two_inputs_with_one_output_name(env: Env, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # regression: a/x.pdf and b/x.pdf were both signed into OUT/x.pdf, the second overwriting the first
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.pdf").write_bytes(licence_pdf())
    assert main([*env.args, "pdf", "batch-sign", str(tmp_path / "a"), str(tmp_path / "b" / "x.pdf"), "-o",
                 str(tmp_path / "out"), "--key", "licence-ec", *env.key_args, "--workers", "0"]) == 2
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"] == "DUPLICATE_FILE_NAME"
    assert not (tmp_path / "out").exists()


def test_batch_progress_bar_on_a_terminal(env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    (tmp_path / "a.pdf").write_bytes(licence_pdf())
    argv = [*env.args, "pdf", "batch-sign", str(tmp_path / "a.pdf"), "-o", str(tmp_path / "o"), "--key",
            "licence-sm2", *env.key_args, "--workers", "0"]
    assert main(argv) == 0
    assert "1/1" in capsys.readouterr().err
    assert main([*argv, "--quiet"]) == 0
    assert "1/1" not in capsys.readouterr().err


@pytest.mark.parametrize("extra,reason", [
    (["--key", "no-such-key"], "KEY_NOT_FOUND"),
    (["--key", "no-cert"], "NO_CERTIFICATE"),
    (["--key", "licence-ec", "--level", "B-T"], "NO_TIMESTAMPER"),
    (["--key", "licence-ec", "--tsa-key", "licence-ec", "--level", "B-T"], "TSA_CERT_EKU"),
])
def test_user_errors_exit_2_and_write_nothing(env: Env, pdf_in: Path, tmp_path: Path, extra: list[str], reason: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), *env.key_args, *extra]) == 2
    assert _error(capsys)["error"] == reason
    assert not out.exists() and not list(tmp_path.glob(".signed.pdf*"))
    assert main([*env.args, "pdf", "batch-sign", str(pdf_in), "-o", str(tmp_path / "dir"), *env.key_args,
                 *extra]) == 2
    assert _error(capsys)["error"] == reason
    assert not list((tmp_path / "dir").glob("*")) if (tmp_path / "dir").exists() else True


def test_a_key_whose_certificate_expired_signs_nothing(env: Env, pdf_in: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store = open_keystore("soft", env.home, passphrase=PASSPHRASE.encode())
    info = store.create("expired-sm2", "sm2")
    ca = dev_identity("sm2")
    now = dt.datetime.now(dt.UTC)
    cert = (CertificateBuilder().subject({"common_name": "expired"}).public_key(info.public_key)
            .key_usage({"digital_signature"}).validity(now - dt.timedelta(days=30), now - dt.timedelta(days=1))
            .sign(ca.root_signer, ca.root))
    store.set_certificate_chain("expired-sm2", info.version, (cert.der, ca.root.der))
    out = tmp_path / "never.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), "--key", "expired-sm2",
                 *env.key_args]) == 3
    assert _error(capsys)["error"] == "KEY_CERTIFICATE_EXPIRED" and not out.exists()


def test_wrong_passphrase(env: Env, pdf_in: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wrong").write_text("not the passphrase\n")
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), "--key", "licence-ec",
                 "--passphrase-file", str(tmp_path / "wrong")]) == 2
    err = _error(capsys)
    assert err["error"] == "WRONG_PASSPHRASE" and "not the passphrase" not in json.dumps(err)
    assert not out.exists()


def test_dev_identity_is_explicit(pdf_in: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # neither --key nor --dev-identity
        main(["pdf", "sign", str(pdf_in), "-o", str(tmp_path / "x.pdf")])
    assert exited.value.code == 2
    assert main(["--home", str(tmp_path / "h"), "pdf", "sign", str(pdf_in), "-o", str(tmp_path / "d.pdf"),
                 "--dev-identity", "rsa"]) == 0
    assert "demo identity" in capsys.readouterr().err
    assert PdfFileReader(io.BytesIO((tmp_path / "d.pdf").read_bytes())).embedded_signatures[0]


def _seal_png(tmp_path: Path) -> Path:
    from trustsvc.seal.picture import render_png

    path = tmp_path / "seal.png"
    path.write_bytes(render_png("北京某某科技有限公司", name="合同专用章", dpi=150))
    return path


def _register_seal(home: Path, es_id: str, holder_cert: bytes) -> bytes:
    """Register a seal listing ``holder_cert`` in the home's registry; its maker's certificate (DER)."""
    from tests.unit.test_seal_support import make_maker, seal_listing
    from trustsvc.seal.picture import render_png
    from trustsvc.seal.registry import SealRegistry

    maker, maker_cert = make_maker()
    picture = render_png("北京某某科技有限公司", dpi=150)
    seal = seal_listing([holder_cert], maker, maker_cert, es_id=es_id, picture=picture)
    SealRegistry(f"sqlite:///{home / 'trustsvc.db'}").register(seal, actor="test")
    return maker_cert.der


def test_registered_seal_picture(env: Env, pdf_in: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_keystore("soft", env.home, passphrase=PASSPHRASE.encode())
    maker = _register_seal(env.home, "1101080000000001", store.info("licence-sm2").certificate_chain[0])
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), "--key", "licence-sm2", *env.key_args,
                 "--seal-id", "1101080000000001", "--box", "300,400,150,150", "--reason", "licence issued"]) == 0
    _assert_in_box(_red_pixels(out.read_bytes(), tmp_path), BOX)
    sig = PdfFileReader(io.BytesIO(out.read_bytes())).embedded_signatures[0]
    assert sig.sig_object["/Reason"] == "licence issued"
    assert validate_pdf_signature(sig, validation_context([env.roots["sm2"]])).valid
    other = tmp_path / "other.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(other), "--key", "licence-ec", *env.key_args,
                 "--seal-id", "1101080000000001", "--box", "300,400,150,150"]) == 3  # refused: conflict
    assert _error(capsys)["error"] == "SIGNER_NOT_IN_CERT_LIST" and not other.exists()
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(other), "--key", "licence-sm2", *env.key_args,
                 "--seal-id", "9999", "--box", "300,400,150,150"]) == 3  # refused: not found
    assert _error(capsys)["error"] == "SEAL_NOT_FOUND"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.pdf").write_bytes(licence_pdf())
    assert main([*env.args, "pdf", "batch-sign", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--key",
                 "licence-sm2", *env.key_args, "--workers", "0", "--seal-id", "1101080000000001", "--box",
                 "300,400,150,150", "--reason", "电子证照签发", "--location", "北京"]) == 0  # fast path: binds it too
    batch = verify_pdf((tmp_path / "out" / "a.pdf").read_bytes(), trust_roots=[env.roots["sm2"], maker])
    assert batch.valid and batch.signatures[0].seal_id == "1101080000000001", batch.to_text()
    sig = PdfFileReader(io.BytesIO((tmp_path / "out" / "a.pdf").read_bytes())).embedded_signatures[0]
    assert (sig.sig_object["/Reason"], sig.sig_object["/Location"]) == ("电子证照签发", "北京")
    _verify_bound_seal(env, out, maker, tmp_path, capsys)


def _verify_bound_seal(env: Env, signed: Path, maker: bytes, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    """`pdf verify` names the bound seal and checks it; with --db, its registry status (read only)."""
    from trustsvc.seal.registry import SealRegistry

    (tmp_path / "root.der").write_bytes(env.roots["sm2"])
    (tmp_path / "maker.der").write_bytes(maker)
    db = f"sqlite:///{env.home / 'trustsvc.db'}"
    verify = ["pdf", "verify", str(signed), "--trust", str(tmp_path / "root.der"), "--trust",
              str(tmp_path / "maker.der"), "--json"]

    def seal_check(code: int, *extra: str) -> dict[str, object]:
        capsys.readouterr()
        assert main([*verify, *extra]) == code
        report = json.loads(capsys.readouterr().out)["signatures"][0]
        assert report["seal"]["es_id"] == "1101080000000001"
        return next(c for c in report["checks"] if c["name"] == "seal")

    assert seal_check(0)["ok"] is True
    assert seal_check(0, "--db", db)["ok"] is True
    SealRegistry(db).suspend("1101080000000001", actor="test", reason="audit")
    check = seal_check(1, "--db", db)
    assert check["ok"] is False and "SEAL_SUSPENDED" in check["detail"], check
    assert main([*verify, "--db", f"sqlite:///{tmp_path / 'missing.db'}"]) == 2
    assert _error(capsys)["error"] == "INPUT_NOT_FOUND" and not (tmp_path / "missing.db").exists()


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh SoftHSM2 token holding an ECDSA key with a certificate chain."""
    import os

    from trustsvc.keys.pkcs11 import Pkcs11KeyStore, pin_source

    require_tool("softhsm2-util")
    directory = tmp_path_factory.mktemp("softhsm")
    conf = make_softhsm(directory, label="trustsvc-pdf")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    store = Pkcs11KeyStore(SOFTHSM_MODULE, token_label="trustsvc-pdf", pin=pin_source(pin=PIN))
    ca = dev_identity("ecdsa")
    _certify_key(store, "hsm-ec", "ec-p256", ca)
    store.close()
    (directory / "user.pin").write_text(PIN + "\n")
    (directory / "wrong.pin").write_text("999999\n")
    yield {"root": ca.root.der, "pin": str(directory / "user.pin"),
           "wrong": str(directory / "wrong.pin")}
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


def test_sign_with_softhsm_key(env: Env, hsm: dict[str, str], pdf_in: Path, tmp_path: Path) -> None:
    hsm_args = ["--store", "hsm", "--key", "hsm-ec", "--hsm-module", SOFTHSM_MODULE, "--hsm-token", "trustsvc-pdf"]
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), *hsm_args, "--pin-file", hsm["pin"],
                 "--seal-org", "某某市人民政府", "--box", "300,400,150,150"]) == 0
    assert pyhanko_pades_level(out.read_bytes(), [hsm["root"]]) == "B-B"
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        (src / f"h{i}.pdf").write_bytes(licence_pdf())
    assert main([*env.args, "pdf", "batch-sign", str(src), "-o", str(tmp_path / "out"), *hsm_args,
                 "--pin-file", hsm["pin"], "--workers", "1"]) == 0
    for p in sorted((tmp_path / "out").iterdir()):
        assert pyhanko_pades_level(p.read_bytes(), [hsm["root"]]) == "B-B"


def test_softhsm_wrong_pin_and_key(env: Env, hsm: dict[str, str], pdf_in: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--store", "hsm", "--hsm-module", SOFTHSM_MODULE, "--hsm-token", "trustsvc-pdf"]
    out = tmp_path / "signed.pdf"
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), *base, "--key", "hsm-ec",
                 "--pin-file", hsm["wrong"]]) == 2
    err = _error(capsys)
    assert err["error"] == "HSM_PIN_INCORRECT" and "999999" not in json.dumps(err)
    assert main([*env.args, "pdf", "sign", str(pdf_in), "-o", str(out), *base, "--key", "missing",
                 "--pin-file", hsm["pin"]]) == 2
    assert _error(capsys)["error"] == "KEY_NOT_FOUND"
    assert not out.exists()
