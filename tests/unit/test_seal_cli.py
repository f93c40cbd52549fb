"""The ``trustsvc seal`` commands: make, lifecycle, export, verify exit codes, render."""

from __future__ import annotations

import json
from pathlib import Path

from cli.main import main
from trustsvc.algorithms.encoding import private_key_to_pem

from .test_seal_support import make_setup

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "interop" / "ses-realworld"


def _make_args(tmp_path: Path) -> list[str]:
    """Test-only maker and holder files written under ``tmp_path``; the `seal make` options naming them."""
    s = make_setup()
    (tmp_path / "maker.pem").write_bytes(private_key_to_pem(s.maker._key))
    (tmp_path / "maker.crt").write_bytes(s.maker_cert.to_pem())
    (tmp_path / "holder.crt").write_bytes(s.holder_cert.to_pem())
    return ["--holder-cert", str(tmp_path / "holder.crt"), "--maker-cert", str(tmp_path / "maker.crt"),
            "--maker-key", str(tmp_path / "maker.pem")]


def test_make_lifecycle_verify(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    make = _make_args(tmp_path)
    home = ["--home", str(tmp_path / "home")]
    seal_file = tmp_path / "seal.esl"
    assert main([*home, "seal", "make", "--name", "测试合同章", "--type", "contract", "--prefix", "330106", *make,
                 "-o", str(seal_file)]) == 0
    es_id = json.loads(capsys.readouterr().out)["es_id"]
    assert es_id == "33010600000001"
    assert main([*home, "seal", "verify", str(seal_file), "--trust", str(tmp_path / "maker.crt")]) == 0
    capsys.readouterr()
    assert main([*home, "seal", "suspend", es_id, "--actor", "a", "--reason", "r"]) == 0
    assert main([*home, "seal", "suspend", es_id, "--actor", "a", "--reason", "r"]) == 3  # conflict
    assert main([*home, "seal", "revoke", es_id, "--actor", "a", "--reason", "r"]) == 0
    capsys.readouterr()
    assert main([*home, "seal", "show", es_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "revoked" and len(shown["history"]) == 3
    assert main([*home, "seal", "list", "--type", "contract"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    out = tmp_path / "exported.esl"
    assert main([*home, "seal", "export", es_id, "-o", str(out)]) == 0
    assert out.read_bytes() == seal_file.read_bytes()
    db = f"sqlite:///{tmp_path / 'home' / 'trustsvc.db'}"
    capsys.readouterr()
    assert main([*home, "seal", "verify", str(seal_file), "--db", db, "--json"]) == 1  # revoked
    assert json.loads(capsys.readouterr().out)["verdict"] == "invalid"


def test_verify_exit_codes_real_files(capsys) -> None:  # type: ignore[no-untyped-def]
    sv = REAL / "ofdrw-sign_src_test_resources_allprotected__Doc_0_Signs_Sign_0_SignedValue.dat"
    doc = REAL / "ofdrw-sign_src_test_resources_allprotected__Doc_0_Signs_Sign_0_Signature.xml"
    assert main(["seal", "verify", str(sv), "--doc", str(doc), "--at", "2020-10-23T12:00:00Z"]) == 0
    assert main(["seal", "verify", str(REAL / "ofdrw-sign_src_test_resources_SESealData.DER")]) == 1
    assert main(["seal", "verify", str(REAL / "ofdrw-sign_src_test_resources_helloworld.ofd")]) == 2


def test_render(tmp_path: Path) -> None:
    png = str(tmp_path / "s.png")
    assert main(["seal", "render", "某某市人民政府", "--name", "公章", "-o", png, "--dpi", "100"]) == 0
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")
    assert main(["seal", "render", "某某市人民政府", "-o", str(tmp_path / "s.svg")]) == 0
    assert b"<svg" in (tmp_path / "s.svg").read_bytes()


def stored_state(db: Path) -> dict[str, str]:
    """SHA-256 of the database and its WAL files, after every connection this process left open has closed."""
    import gc
    import hashlib
    import sqlite3

    gc.collect()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(db.parent.glob(db.name + "*"))}


def test_reading_commands_never_write_the_registry(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # regression: 'seal verify --db' (and list, show, export) opened the file read-write and recorded
    # schema_migrations in whatever database it was given, creating one where there was none
    home = ["--home", str(tmp_path / "home")]
    seal_file = tmp_path / "seal.esl"
    assert main([*home, "seal", "make", "--name", "测试章", *_make_args(tmp_path), "-o", str(seal_file)]) == 0
    es_id = json.loads(capsys.readouterr().out)["es_id"]
    db = tmp_path / "home" / "trustsvc.db"
    before = stored_state(db)
    assert main([*home, "seal", "verify", str(seal_file), "--db", f"sqlite:///{db}"]) == 0  # with warnings: no anchor
    assert main([*home, "seal", "list"]) == 0
    assert main([*home, "seal", "show", es_id]) == 0
    assert main([*home, "seal", "export", es_id, "-o", str(tmp_path / "out.esl")]) == 0
    assert stored_state(db) == before

    capsys.readouterr()
    absent = tmp_path / "elsewhere" / "trustsvc.db"
    assert main([*home, "seal", "list", "--db", f"sqlite:///{absent}"]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "INPUT_NOT_FOUND"
    assert not absent.parent.exists()

    other = tmp_path / "other.db"
    import sqlite3

    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE audit_log (seq INTEGER)")
    conn.close()
    before_other = other.read_bytes()
    assert main([*home, "seal", "verify", str(seal_file), "--db", str(other)]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "NO_SEAL_REGISTRY"
    assert other.read_bytes() == before_other
    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    assert main([*home, "seal", "show", es_id, "--db", str(tmp_path / "junk.db")]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "NOT_A_SEAL_DATABASE"


def test_verify_with_a_crl(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`seal verify --crl`: a signer certificate revoked before the signature's time fails it (exit 1,
    REVOKED); a file that is not a CRL is bad input (exit 2, BAD_CRL)."""
    import datetime as dt
    import json

    from tests.unit.test_seal_support import make_setup
    from trustsvc.pki.crl import RevokedEntry, build_crl
    from trustsvc.seal.sign import SealSigner

    s = make_setup()
    sig = tmp_path / "sig.der"
    sig.write_bytes(SealSigner(s.seal, s.holder, s.holder_cert).sign_document(b"doc", "p"))
    (tmp_path / "maker.crt").write_bytes(s.maker_cert.der)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    crl = build_crl(s.maker, s.maker_cert, [RevokedEntry(s.holder_cert.serial_number, earlier)], crl_number=1)
    (tmp_path / "maker.crl").write_bytes(crl.to_pem())
    verify = ["seal", "verify", str(sig), "--trust", str(tmp_path / "maker.crt"), "--json"]
    assert main(verify) == 0
    capsys.readouterr()
    assert main([*verify, "--crl", str(tmp_path / "maker.crl")]) == 1
    checks = {c["name"]: c["reason"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["signature.signer_chain"] == "REVOKED"
    assert main([*verify, "--crl", str(sig)]) == 2
    assert "BAD_CRL" in capsys.readouterr().err
