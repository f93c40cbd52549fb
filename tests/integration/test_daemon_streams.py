"""Large streams through a daemon in its own process (real mTLS): the server's peak memory stays bounded.

64 MiB of data go through SignDataStream (SM2 and ECDSA; the daemon may grow by at most half of that, so
it never holds the message: seen 6-22 MiB, the high end on a loaded machine while gRPC buffers ahead),
then a ~50 MB PDF through SignPdfStream
(in that order: memory freed after a larger earlier peak would hide a later one). The daemon's
VmHWM (peak RSS, /proc/<pid>/status) is reset before and read after each.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.conftest import require_tool
from trustsvc.client import Client, document_pb2, error_reason
from trustsvc.pdf.devkit import licence_pdf
from trustsvc.pdf.verify import verify_pdf
from trustsvc.pki.certificate import Certificate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
DATA_MIB = 64  # SignDataStream test size
CHUNK = MB


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, str]]:
    """(pid, home, target) of `trustsvc serve` in a subprocess on an ephemeral port."""
    home = tmp_path_factory.mktemp("daemon-proc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSVC_")}
    env["TRUSTSVC_DEFAULT_DEADLINE_S"] = "600"
    log = (home / "daemon.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--home", str(home), "serve", "--listen",
                             "127.0.0.1:0", "--metrics-listen", ""], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=log)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.decode())
            if line.rstrip() == b"}":
                break
        info = json.loads("".join(lines))
        yield proc.pid, home, info["listening"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


def _client(daemon: tuple[int, Path, str], identity: str = "demo-client") -> Client:
    _, home, target = daemon
    return Client.from_home(home, target, identity, server_name="localhost", timeout=600)


def _reset_peak(pid: int) -> int:
    """Reset the process's peak RSS to its current RSS (Linux clear_refs 5); returns it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _peak_rss(pid)


def _peak_rss(pid: int) -> int:
    """VmHWM of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _big_pdf(path: Path, image_bytes: int = 50_000_000) -> None:
    """A valid one-page PDF whose page shows an 8-bit grey image of random (incompressible) pixels."""
    width = 8000
    height = image_bytes // width
    content = b"q 200 0 0 200 100 500 cm /Im1 Do Q\nBT /F1 12 Tf 72 760 Td (large licence) Tj ET\n"
    offsets = []
    with path.open("wb") as f:
        def obj(body: bytes, stream_len: int | None = None) -> None:
            offsets.append(f.tell())
            f.write(f"{len(offsets)} 0 obj\n".encode() + body)
            if stream_len is None:
                f.write(b"\nendobj\n")

        f.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        obj(b"<< /Type /Catalog /Pages 2 0 R >>")
        obj(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
        obj(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /XObject "
            b"<< /Im1 5 0 R >> /Font << /F1 6 0 R >> >> >>")
        obj(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream\nendobj\n", len(content))
        obj(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (width, height, width * height), width * height)
        left = width * height
        while left:
            n = min(left, 4 * MB)
            f.write(os.urandom(n))
            left -= n
        f.write(b"\nendstream\nendobj\n")
        obj(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        xref = f.tell()
        f.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        for off in offsets:
            f.write(b"%010d 00000 n \n" % off)
        f.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref))


def _pdf_requests(opts: document_pb2.PdfSignOptions, path: Path) -> Iterator[document_pb2.SignPdfStreamRequest]:
    yield document_pb2.SignPdfStreamRequest(options=opts)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield document_pb2.SignPdfStreamRequest(chunk=chunk)


def _stream_pdf(c: Client, opts: document_pb2.PdfSignOptions, src: Path, dst: Path) -> tuple[int, object]:
    """Stream ``src`` in, write the chunks that come back to ``dst``; (number of chunks, summary)."""
    chunks, summary = 0, None
    with dst.open("wb") as out:
        for part in c.documents.SignPdfStream(_pdf_requests(opts, src), timeout=600):
            if part.WhichOneof("part") == "chunk":
                assert len(part.chunk) <= CHUNK
                out.write(part.chunk)
                chunks += 1
            else:
                summary = part.summary
    return chunks, summary


def _warm_up(c: Client, tmp: Path) -> None:
    """Reach steady state first (imports, gRPC buffers, allocator arenas): one small PDF, 8 MiB of data."""
    small = tmp / "small.pdf"
    small.write_bytes(licence_pdf())
    _stream_pdf(c, document_pb2.PdfSignOptions(key="default"), small, tmp / "small-signed.pdf")
    c.sign_data_stream("default", (os.urandom(CHUNK) for _ in range(8)))


def _openssl_verify(tmp: Path, pub_pem: bytes, data: Path, sig: bytes, digest: str, sm2: bool) -> None:
    openssl = require_tool("openssl")
    (tmp / "pub.pem").write_bytes(pub_pem)
    (tmp / "sig").write_bytes(sig)
    cmd = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp / "pub.pem"), "-rawin", "-digest", digest,
           "-in", str(data), "-sigfile", str(tmp / "sig")]
    if sm2:
        cmd += ["-pkeyopt", "distid:1234567812345678"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0 and "Success" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("spec", ["sm2", "ec-p256"])
def test_64mb_sign_data_stream_verifies_with_openssl(daemon: tuple[int, Path, str], tmp_path: Path,
                                                    spec: str) -> None:
    pid = daemon[0]
    data = tmp_path / "data.bin"
    with data.open("wb") as f:
        for _ in range(DATA_MIB):
            f.write(os.urandom(MB))

    def chunks() -> Iterator[bytes]:
        with data.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    with _client(daemon) as c, _client(daemon, "admin") as admin:
        if spec == "sm2":
            key = "default"
            pub = Certificate.load(c.export_cert(key).certificate).public_key.to_pem()
        else:
            key = "demo-ec"
            from trustsvc.algorithms.keypair import PublicKey

            pub = PublicKey.from_spki(admin.create_key(key, spec).public_key).to_pem()
        _warm_up(c, tmp_path)
        before = _reset_peak(pid)
        resp = c.sign_data_stream(key, chunks(), timeout=600)
        grown = _peak_rss(pid) - before
    assert grown < DATA_MIB // 2 * MB, f"daemon peak RSS grew by {grown / MB:.1f} MiB for {DATA_MIB} MiB of data"
    assert resp.algorithm == ("sm2-sm3" if spec == "sm2" else "ecdsa-p256-sha256")
    _openssl_verify(tmp_path, pub, data, resp.signature, "sm3" if spec == "sm2" else "sha256", spec == "sm2")


def test_ed25519_stream_gathers_and_verifies(daemon: tuple[int, Path, str]) -> None:
    from trustsvc.algorithms.keypair import PublicKey
    from trustsvc.algorithms.signer import Verifier

    message = os.urandom(3 * MB)
    with _client(daemon) as c, _client(daemon, "admin") as admin:
        pub = PublicKey.from_spki(admin.create_key("demo-ed", "ed25519").public_key)
        resp = c.sign_data_stream("demo-ed", (message[i:i + CHUNK] for i in range(0, len(message), CHUNK)))
    Verifier(pub).verify(message, resp.signature)


def test_50mb_pdf_streams_with_bounded_server_memory(daemon: tuple[int, Path, str], tmp_path: Path) -> None:
    pid, home, _ = daemon
    src, dst = tmp_path / "big.pdf", tmp_path / "big-signed.pdf"
    _big_pdf(src)
    size = src.stat().st_size
    assert size > 50_000_000
    with _client(daemon) as c:
        _warm_up(c, tmp_path)
        before = _reset_peak(pid)
        opts = document_pb2.PdfSignOptions(key="default", reason="large licence", idempotency_key="big-1")
        chunks, summary = _stream_pdf(c, opts, src, dst)
        grown = _peak_rss(pid) - before
        assert grown < 40 * MB, f"daemon peak RSS grew by {grown / MB:.1f} MiB for a {size / MB:.0f} MiB PDF"
        signed = dst.read_bytes()
        assert chunks >= size // CHUNK and len(signed) > size
        assert summary is not None and summary.signed_size == len(signed)  # type: ignore[attr-defined]
        assert summary.signed_sha256 == hashlib.sha256(signed).hexdigest()  # type: ignore[attr-defined]
        assert summary.document_sha256 == hashlib.sha256(src.read_bytes()).hexdigest()  # type: ignore[attr-defined]
        assert signed.startswith(src.read_bytes()[:1024])  # an incremental update of the original
        root = Certificate.load((home / "ca" / "ca-cert.pem").read_bytes())
        report = verify_pdf(signed, trust_roots=[root.der])
        assert report.valid, report.to_text()

        # the same request again: too large to have been kept for replay; said so, never signed twice
        with pytest.raises(grpc.RpcError) as err:
            _stream_pdf(c, opts, src, tmp_path / "again.pdf")
        assert (err.value.code(), error_reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                                "RESULT_NOT_RETAINED")
        assert str(summary.audit.seq) in (err.value.details() or "")  # type: ignore[attr-defined]


def test_small_pdf_replayed_from_idempotency_store(daemon: tuple[int, Path, str], tmp_path: Path) -> None:
    src = tmp_path / "small.pdf"
    src.write_bytes(licence_pdf())
    opts = document_pb2.PdfSignOptions(key="default", idempotency_key="small-1")
    with _client(daemon) as c, (tmp_path / "a.pdf").open("wb") as a, (tmp_path / "b.pdf").open("wb") as b:
        first = c.sign_pdf_stream(opts, [src.read_bytes()], a)
        again = c.sign_pdf_stream(opts, [src.read_bytes()], b)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert first.signed_sha256 == hashlib.sha256((tmp_path / "a.pdf").read_bytes()).hexdigest()
    assert first.audit.seq == again.audit.seq  # type: ignore[attr-defined]
