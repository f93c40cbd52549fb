"""Batch signing: many PDFs, one key, the fast path spread over cores; outputs appear atomically."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from trustsvc.algorithms.signer import Signer
from trustsvc.errors import TrustsvcError
from trustsvc.fileio import write_atomic
from trustsvc.pdf.fast import FastPdfSigner

SignerFactory = Callable[[], Signer]
_worker: FastPdfSigner | None = None


@dataclasses.dataclass(frozen=True)
class BatchResult:
    source: str
    output: str | None
    error: str | None = None


def _init(factory: SignerFactory, subfilter: str) -> None:
    global _worker
    _worker = FastPdfSigner(factory(), subfilter=subfilter)  # built once per worker process


def _sign_file(source: str, output: str) -> BatchResult:
    assert _worker is not None
    try:
        with open(source, "rb") as f:
            data = f.read()
        write_atomic(Path(output), _worker.sign(data))
        return BatchResult(source, output)
    except TrustsvcError as exc:
        return BatchResult(source, None, f"{exc.reason}: {exc.message}")
    except OSError as exc:
        return BatchResult(source, None, f"IO_ERROR: {exc}")


def batch_sign(sources: Sequence[str | Path], out_dir: str | Path, factory: SignerFactory, *,
               workers: int | None = None, subfilter: str = "adbe.pkcs7.detached",
               progress: Callable[[int, int], None] | None = None) -> list[BatchResult]:
    """Sign each source into ``out_dir`` (same file name). ``factory`` must be picklable (a module-level function).

    ``workers`` 0 signs in this process. ``progress(done, total)`` is called after each file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(s), str(out / Path(s).name)) for s in sources]
    results: list[BatchResult] = []
    if workers == 0:
        _init(factory, subfilter)
        for i, (s, o) in enumerate(jobs, 1):
            results.append(_sign_file(s, o))
            if progress:
                progress(i, len(jobs))
        return results
    with cf.ProcessPoolExecutor(max_workers=workers or os.cpu_count(), initializer=_init,
                                initargs=(factory, subfilter)) as pool:
        futures = [pool.submit(_sign_file, s, o) for s, o in jobs]
        for i, fut in enumerate(cf.as_completed(futures), 1):
            results.append(fut.result())
            if progress:
                progress(i, len(jobs))
    order = {s: i for i, (s, _) in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r.source])
