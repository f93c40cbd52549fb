"""Batch signing: many PDFs, one key, spread over cores; outputs appear atomically.

PAdES B-B without certification or seal text takes the fast path (``FastPdfSigner``, visible seal prepared once
per worker); B-T and up, certification or a seal with text (its font is subset per document) sign each file
through ``sign_pdf``, with a time stamper per worker.
Each file may carry its own licence metadata (``licences``, by file name), written in the signed revision.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trustsvc.algorithms.signer import Signer
from trustsvc.errors import InvalidInput, TrustsvcError
from trustsvc.fileio import write_atomic
from trustsvc.pdf.fast import FastPdfSigner
from trustsvc.pdf.metadata import LicenceMetadata
from trustsvc.pdf.signing import PadesLevel, SignOptions, sign_pdf

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper

    from trustsvc.pdf.appearance import SealAppearance

SignerFactory = Callable[[], Signer]
TimeStamperFactory = Callable[[], "TimeStamper"]
Worker = Callable[[bytes, LicenceMetadata | None], bytes]
_worker: Worker | None = None


@dataclasses.dataclass(frozen=True)
class BatchResult:
    source: str
    output: str | None
    error: str | None = None
    input_error: bool = False  # the file itself was bad (not a PDF, encrypted ...), not the signer or the disk


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """How every document is signed; picklable (factories must be module-level functions or partials)."""

    subfilter: str = "ETSI.CAdES.detached"
    appearance: SealAppearance | None = None
    level: str = "B-B"
    certify: int | None = None
    timestamper_factory: TimeStamperFactory | None = None
    trust_roots: tuple[bytes, ...] = ()  # B-LT/B-LTA validation data: signer and TSA roots (default signer's root)
    reason: str | None = None  # the signature dictionary's /Reason and /Location
    location: str | None = None
    crls: tuple[bytes, ...] = ()  # DER CRLs embedded as B-LT/B-LTA validation data

    @property
    def fast(self) -> bool:
        return (PadesLevel.parse(self.level) is PadesLevel.B_B and self.certify is None
                and (self.appearance is None or not self.appearance.text))


def make_worker(signer: Signer, options: BatchOptions) -> Worker:
    """The per-document signing function ``(pdf, licence metadata or None)``: the fast path when it can, else
    ``sign_pdf``."""
    if options.fast:
        fast = FastPdfSigner(signer, subfilter=options.subfilter, appearance=options.appearance,
                             reason=options.reason, location=options.location)
        return lambda data, metadata: fast.sign(data, metadata=metadata)
    level = PadesLevel.parse(options.level)
    timestamper = options.timestamper_factory() if options.timestamper_factory is not None else None
    if level is not PadesLevel.B_B and timestamper is None:
        raise InvalidInput(f"PAdES {level.value} needs a time stamper", reason="NO_TIMESTAMPER")
    opts = SignOptions(level=level, timestamper=timestamper, certify=options.certify,
                       appearance=options.appearance, subfilter=options.subfilter, trust_roots=options.trust_roots,
                       reason=options.reason, location=options.location, crls=options.crls)
    return lambda data, metadata: sign_pdf(data, signer, dataclasses.replace(opts, metadata=metadata))


def _init(factory: SignerFactory, options: BatchOptions) -> None:
    global _worker
    _worker = make_worker(factory(), options)  # built once per worker process


def _sign_file(source: str, output: str, metadata: LicenceMetadata | None = None) -> BatchResult:
    assert _worker is not None
    try:
        with open(source, "rb") as f:
            data = f.read()
        write_atomic(Path(output), _worker(data, metadata))
        return BatchResult(source, output)
    except TrustsvcError as exc:
        return BatchResult(source, None, f"{exc.reason}: {exc.message}", isinstance(exc, InvalidInput))
    except OSError as exc:
        return BatchResult(source, None, f"IO_ERROR: {exc}")


def batch_sign(sources: Sequence[str | Path], out_dir: str | Path, factory: SignerFactory, *,
               workers: int | None = None, subfilter: str = "ETSI.CAdES.detached",
               progress: Callable[[int, int], None] | None = None, options: BatchOptions | None = None,
               start_method: str | None = None, licences: Mapping[str, LicenceMetadata] | None = None,
               ) -> list[BatchResult]:
    """Sign each source into ``out_dir`` (same file name). ``factory`` must be picklable (a module-level function).

    ``workers`` 0 signs in this process. ``progress(done, total)`` is called after each file. ``options``
    (default: B-B fast path with ``subfilter``) say how to sign. ``start_method`` "spawn" keeps workers from
    inheriting this process's state (needed when an HSM library was initialised here). ``licences`` maps a
    source's file name to the licence metadata written into it.
    """
    opts = options or BatchOptions(subfilter=subfilter)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    licences = licences or {}
    jobs = [(str(s), str(out / Path(s).name), licences.get(Path(s).name)) for s in sources]
    results: list[BatchResult] = []
    if workers == 0:
        _init(factory, opts)
        for i, (s, o, m) in enumerate(jobs, 1):
            results.append(_sign_file(s, o, m))
            if progress:
                progress(i, len(jobs))
        return results
    context = multiprocessing.get_context(start_method) if start_method else None
    with cf.ProcessPoolExecutor(max_workers=workers or os.cpu_count(), initializer=_init,
                                initargs=(factory, opts), mp_context=context) as pool:
        futures = [pool.submit(_sign_file, s, o, m) for s, o, m in jobs]
        for i, fut in enumerate(cf.as_completed(futures), 1):
            results.append(fut.result())
            if progress:
                progress(i, len(jobs))
    order = {s: i for i, (s, _, _) in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r.source])
