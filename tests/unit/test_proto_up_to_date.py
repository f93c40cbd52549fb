"""The generated code in trustsvc/_generated matches proto/ (regenerated here when outdated)."""

from __future__ import annotations

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


def test_every_proto_service_is_served() -> None:
    from trustsvc.server.app import SERVICES

    served = {s for _, s, _, _ in SERVICES}
    declared = set()
    for name in codegen.MODULES:
        pb, _ = codegen.load(name)
        declared |= set(pb.DESCRIPTOR.services_by_name)
    assert declared == served
