"""Finding audit records: by request, operation, client, ref, time and document hashes, on SQLite and PostgreSQL;
a document is found as input, signed output, batch item or earlier PDF revision; bad queries are refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest

from trustsvc.algorithms.sm3 import sm3_hex
from trustsvc.audit import AuditEvent, AuditLog
from trustsvc.audit.search import AuditQuery, document_hashes, find_records
from trustsvc.errors import InvalidInput
from trustsvc.pdf.devkit import dev_identity, licence_pdf
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.store.database import Database

PDF = licence_pdf(text="audit search")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def log(db_url: str) -> tuple[Database, dict[str, bytes], dt.datetime]:
    """A log of: a PDF signed alone, a batch of two PDFs, data signed, a token issued, a refusal. Returns the
    database, the documents, and a time between the first two records and the rest."""
    db = Database(db_url)
    log = AuditLog(db)
    signed = FastPdfSigner(dev_identity("sm2").signer).sign(PDF)
    other = licence_pdf(text="second")
    log.append(AuditEvent("DocumentService/SignPdf", "cn=portal", "r1", "default@1", _sha(PDF), "ok",
                          {"signed_sha256": _sha(signed), "bytes_out": len(signed), "seal": "S1"}))
    log.append(AuditEvent("DocumentService/BatchSignPdf", "cn=batch", "r2", "default@1", "ab" * 32, "partial",
                          {"hash": "sha256", "items": [["x", _sha(other), "ok"], ["y", "", "EMPTY_DATA"]]}))
    time.sleep(0.01)
    middle = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    log.append(AuditEvent("SignatureService/SignData", "cn=portal", "r3", "default@1", sm3_hex(b"data")))
    log.append(AuditEvent("TokenService/IssueToken", "cn=portal", "r4", "token@2", "cd" * 32, "ok", {"jti": "j"}))
    log.append(AuditEvent("SealService/SignWithSeal", "cn=other", "r5", "seal:S1", "", "refused:SEAL_NOT_ACTIVE",
                          {"message": f"mentions {_sha(PDF)} in passing"}))
    return db, {"pdf": PDF, "signed": signed, "other": other}, middle


def _seqs(db: Database, **query: object) -> list[int]:
    return [m.record.seq for m in find_records(db, AuditQuery(**query))]  # type: ignore[arg-type]


def test_filters(log: tuple[Database, dict[str, bytes], dt.datetime]) -> None:
    db, _, middle = log
    assert _seqs(db) == [1, 2, 3, 4, 5]
    assert _seqs(db, request_id="r3") == [3]
    assert _seqs(db, client="cn=portal") == [1, 3, 4]
    assert _seqs(db, ref="default@1") == [1, 2, 3]
    assert _seqs(db, operation="DocumentService/*") == [1, 2]
    assert _seqs(db, operation="DocumentService/SignPdf") == [1]  # exact unless it ends in *
    assert _seqs(db, since=middle) == [3, 4, 5]
    assert _seqs(db, until=middle) == [1, 2]
    assert _seqs(db, until=middle.astimezone(dt.timezone(dt.timedelta(hours=8)))) == [1, 2]  # any zone
    assert _seqs(db, client="cn=portal", since=middle) == [3, 4]
    assert _seqs(db, limit=2) == [1, 2]
    assert _seqs(db, seal="S1") == [1, 5]  # stamped on a PDF (detail.seal), and the seal's own operation
    assert _seqs(db, seal="S") == []  # whole esIDs only
    assert _seqs(db, request_id="none") == []


def test_a_document_is_found_as_input_output_batch_item_or_earlier_revision(
        log: tuple[Database, dict[str, bytes], dt.datetime]) -> None:
    db, docs, _ = log

    def found(data: bytes) -> list[tuple[int, str]]:
        return [(m.record.seq, m.matched) for m in find_records(db, AuditQuery(hashes=list(document_hashes(data))))]

    assert found(docs["pdf"]) == [(1, "document")]  # the refusal's message only mentions it: not a match
    assert found(docs["signed"]) == [(1, "signed output")]
    assert found(docs["other"]) == [(2, "batch item x")]
    signed_other = FastPdfSigner(dev_identity("ecdsa").signer).sign(docs["other"])  # signed elsewhere: an earlier
    assert found(signed_other) == [(2, "batch item x")]  # revision is what the batch received
    assert found(b"data") == [(3, "document")]  # SM3 of data
    assert found(b"unknown") == []
    assert [m.record.seq for m in find_records(db, AuditQuery(hashes=["CD" * 32]))] == [4]  # any case


def test_document_hashes_of_a_pdf_name_each_revision() -> None:
    signed = FastPdfSigner(dev_identity("sm2").signer).sign(PDF)
    hashes = document_hashes(signed)
    assert hashes[_sha(signed)] == "SHA-256 of the file"
    assert hashes[_sha(PDF)] == f"SHA-256 of the revision in bytes 0..{len(PDF)}"
    assert sm3_hex(PDF) in hashes and sm3_hex(signed) in hashes
    assert len(document_hashes(b"no revisions")) == 2


@pytest.mark.parametrize(("query", "reason"), [
    (AuditQuery(hashes=["not hex"]), "BAD_HASH"),
    (AuditQuery(hashes=["abcd"]), "BAD_HASH"),  # too short to be a digest
    (AuditQuery(hashes=["a" * 64] * 300), "BAD_HASH"),
    (AuditQuery(limit=0), "BAD_LIMIT"),
])
def test_bad_queries_are_refused(log: tuple[Database, dict[str, bytes], dt.datetime], query: AuditQuery,
                                 reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        find_records(log[0], query)
    assert err.value.reason == reason


def test_a_read_only_database_is_enough(log: tuple[Database, dict[str, bytes], dt.datetime], db_url: str) -> None:
    assert [m.record.seq for m in find_records(Database(db_url, read_only=True), AuditQuery(ref="seal:S1"))] == [5]


def test_cli_find(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import json

    from cli.main import main

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = AuditLog(Database(url))
    log.append(AuditEvent("DocumentService/SignPdf", "cn=portal", "r1", "default@1", _sha(PDF)))
    log.append(AuditEvent("TokenService/IssueToken", "cn=portal", "r2", "token@1", "cd" * 32))
    (tmp_path / "in.pdf").write_bytes(PDF)
    capsys.readouterr()
    assert main(["audit", "find", "--db", url, "--document", str(tmp_path / "in.pdf")]) == 0
    out = capsys.readouterr().out
    assert "DocumentService/SignPdf" in out and "[document: SHA-256 of the file]" in out and "IssueToken" not in out
    assert main(["audit", "find", "--db", url, "--operation", "TokenService/*", "--json"]) == 0
    assert [json.loads(line)["request_id"] for line in capsys.readouterr().out.splitlines()] == ["r2"]
    assert main(["audit", "find", "--db", url, "-n", "1"]) == 0
    assert "(first 1 matches" in capsys.readouterr().out
    bad = [(["--hash", "xyz"], "BAD_HASH"), (["--since", "yesterday"], "BAD_TIME"),
           (["--document", str(tmp_path / "missing.pdf")], "INPUT_NOT_FOUND"), (["-n", "0"], "BAD_LIMIT")]
    for argv, reason in bad:
        assert main(["audit", "find", "--db", url, *argv]) == 2, argv
        assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"] == reason
