"""The generated code in trustsvc/_generated matches proto/ (regenerated here when outdated)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trustsvc import codegen


def test_generated_code_is_up_to_date(tmp_path) -> None:
    codegen.ensure()
    assert codegen.is_up_to_date()
    out = tmp_path / "gen"
    codegen.generate(out)
    assert (out / "STAMP").read_text().strip() == codegen.proto_digest()
    for path in sorted((out / "trustsvc" / "v1").glob("*.py")):
        current = codegen.OUT / "trustsvc" / "v1" / path.name
        assert current.read_text() == path.read_text(), f"{current} is stale: run python -m trustsvc.codegen"


@pytest.fixture
def proto_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """codegen pointed at a copy of proto/ and an output directory of its own, generated once."""
    root = tmp_path / "proto"
    shutil.copytree(codegen.PROTO_ROOT, root)
    out = tmp_path / "pkg" / "_generated"
    monkeypatch.setattr(codegen, "PROTO_ROOT", root)
    monkeypatch.setattr(codegen, "PROTO_DIR", root / "trustsvc" / "v1")
    monkeypatch.setattr(codegen, "OUT", out)
    monkeypatch.setattr(codegen, "STAMP", out / "STAMP")
    codegen.ensure()
    assert codegen.is_up_to_date()
    return root


def test_an_edited_proto_makes_the_generated_code_stale_and_ensure_regenerates_it(proto_copy: Path) -> None:
    proto = proto_copy / "trustsvc" / "v1" / "common.proto"
    proto.write_text(proto.read_text() + "\nmessage StalenessProbe { string note = 1; }\n")
    assert not codegen.is_up_to_date()
    codegen.ensure()
    assert codegen.is_up_to_date()
    assert "StalenessProbe" in (codegen.OUT / "trustsvc" / "v1" / "common_pb2.py").read_text()


def test_a_missing_or_foreign_stamp_is_stale(proto_copy: Path) -> None:
    codegen.STAMP.write_text("0" * 64 + "\n")
    assert not codegen.is_up_to_date()
    codegen.STAMP.unlink()
    assert not codegen.is_up_to_date()


def test_a_proto_that_does_not_compile_fails_and_keeps_the_old_code(proto_copy: Path) -> None:
    before = (codegen.OUT / "trustsvc" / "v1" / "common_pb2.py").read_text()
    proto = proto_copy / "trustsvc" / "v1" / "common.proto"
    proto.write_text(proto.read_text() + "\nmessage Broken { string = 1; }\n")
    with pytest.raises(RuntimeError, match="protoc failed"):
        codegen.ensure()
    assert (codegen.OUT / "trustsvc" / "v1" / "common_pb2.py").read_text() == before
    assert not codegen.is_up_to_date()


def test_check_command_reports_the_state_of_this_checkout() -> None:
    codegen.ensure()
    done = subprocess.run([sys.executable, "-m", "trustsvc.codegen", "--check"], capture_output=True, text=True,
                          cwd=codegen.ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout


def test_every_proto_service_is_served() -> None:
    from trustsvc.server.app import SERVICES

    served = {s for _, s, _, _ in SERVICES}
    declared = set()
    for name in codegen.MODULES:
        pb, _ = codegen.load(name)
        declared |= set(pb.DESCRIPTOR.services_by_name)
    assert declared == served
