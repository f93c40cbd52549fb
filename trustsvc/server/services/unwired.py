"""Services whose library is not wired into the daemon yet: every RPC answers UNIMPLEMENTED, saying why."""

from __future__ import annotations

from typing import Any

from trustsvc import codegen
from trustsvc.server.services.common import unimplemented


def _unwired(proto: str, service: str, library: str) -> type:
    _, pb_grpc = codegen.load(proto)
    base = getattr(pb_grpc, f"{service}Servicer")
    methods = {name: unimplemented(library) for name in dir(base) if name[:1].isupper()}
    return type(f"Unwired{service}", (base,), methods)


def unwired(proto: str, service: str, library: str) -> Any:
    return _unwired(proto, service, library)()
