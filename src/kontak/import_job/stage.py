"""The parsing child: reads an uploaded file, checks every row, writes the staging file.

Run as ``python -m kontak.import_job.stage SPEC.json`` by the runner, with its address
space capped first thing, so that a hostile workbook (python-calamine can abort the whole
process) or a runaway parse ends this process only. Protocol on stdout, one line each:
``PROGRESS <rows> <estimated total>``, then ``DONE <rows>`` (exit 0) or
``REJECT <json message>`` (exit 3).
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

from kontak.custom_field.values import FieldSpec
from kontak.db.base import id_start, sequence_from
from kontak.files.cells import cell_text
from kontak.files.csv_reader import read_csv
from kontak.files.errors import FileRejected
from kontak.files.headers import CUSTOM_PREFIX, map_headers
from kontak.files.sniff import sniff
from kontak.files.table import Limits, Table
from kontak.import_job.checks import RowChecker
from kontak.import_job.staging import Records, Stage, records
from kontak.messages import Text

EXIT_REJECTED = 3
PROGRESS_EVERY_S = 0.2
CHUNK_ROWS = 2000
Chunk = list[tuple[int, list[Any]]]
PARALLEL_FROM_ROWS = 20_000  # smaller files are checked faster than worker processes start


def run(spec: dict[str, Any]) -> int:
    """Stage the file described by ``spec``; returns the number of data rows."""
    source = Path(spec["source"])
    limits = Limits(**spec["limits"])
    fields = [
        FieldSpec(f["key"], f["label"], f["type"], f["required"], tuple(f["options"]))
        for f in spec["fields"]
    ]
    kind = sniff(source)
    table = _open(kind, source, limits)
    columns = map_headers(table.headers, [f.key for f in fields])
    mapped = {
        f.removeprefix(CUSTOM_PREFIX) for f in columns.fields if f and f.startswith(CUSTOM_PREFIX)
    }
    missing = [f.key for f in fields if f.required and f.key not in mapped]
    if missing:
        raise FileRejected("file.missing_required", fields=", ".join(missing))
    checker = RowChecker(
        columns, region=spec["region"], fields=fields, max_cell_chars=limits.max_cell_chars
    )
    stage = Stage(Path(spec["stage"]), create=True)
    estimated = table.estimated_rows or 0
    count = 0
    last = 0.0
    workers = int(spec.get("workers", 1)) if estimated >= PARALLEL_FROM_ROWS else 1
    try:
        for prepared in _prepared(table, checker, workers, start=id_start()):
            stage.add(prepared)
            count += 1
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                last = now
                _say(f"PROGRESS {count} {max(estimated, count)}")
        if count == 0:
            raise FileRejected("file.header_only")
        stage.finish(
            {
                "format": kind,
                "headers": table.headers,
                "header_row": table.header_row,
                "rows_total": count,
                "encoding": table.encoding,
                "delimiter": table.delimiter,
            }
        )
    finally:
        stage.close()
    return count


_checker: RowChecker | None = None  # the workers' checker, inherited through fork


def _prepare(checker: RowChecker, chunk: Chunk, ids: Iterator[str]) -> list[Records]:
    """Check each row of ``chunk`` and turn it into staging records."""
    out = []
    for row, cells in chunk:
        checked = checker.check(row, list(cells))
        texts = [c if isinstance(c, str) else cell_text(c) for c in cells]
        out.append(records(checked, texts, next(ids)))
    return out


def _prepare_in_worker(first_id: int, chunk: Chunk) -> list[Records]:
    assert _checker is not None
    return _prepare(_checker, chunk, sequence_from(first_id))


def _prepared(table: Table, checker: RowChecker, workers: int, *, start: int) -> Iterator[Records]:
    """Each data row's staging records, in file order. Contact ids follow ``start`` by
    data row, so they follow the file whoever computes them. With ``workers`` > 1 the rows
    are checked in that many forked processes (both cores), at most two chunks each in
    flight so that memory stays bounded whatever the file's size."""
    if workers <= 1:
        ids = sequence_from(start)
        for chunk in _chunks(table.rows, CHUNK_ROWS):
            yield from _prepare(checker, chunk, ids)
        return
    global _checker
    _checker = checker
    pending: deque[AsyncResult[list[Records]]] = deque()
    first = start
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for chunk in _chunks(table.rows, CHUNK_ROWS):
            pending.append(pool.apply_async(_prepare_in_worker, (first, chunk)))
            first += len(chunk)
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()
        pool.close()
        pool.join()


def _chunks(
    rows: Iterator[tuple[int, list[Any]]], size: int
) -> Iterator[list[tuple[int, list[Any]]]]:
    chunk: list[tuple[int, list[Any]]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _open(kind: str, source: Path, limits: Limits) -> Table:
    if kind == "xlsx":
        from kontak.files.xlsx_reader import read_xlsx

        return read_xlsx(source, limits)
    return read_csv(source, limits)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _cap_memory(megabytes: int) -> None:
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die_with_parent() -> None:
    """Linux: end this child when its parent dies (a killed server leaves no parser behind)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    _die_with_parent()
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    _cap_memory(int(spec.get("memory_limit_mb", 0)))
    try:
        count = run(spec)
    except FileRejected as exc:
        _say("REJECT " + json.dumps({"message": exc.message, "text": exc.message.to_json()}))
        return EXIT_REJECTED
    except MemoryError:
        text = Text("file.memory")
        _say("REJECT " + json.dumps({"message": text, "text": text.to_json()}))
        return EXIT_REJECTED
    _say(f"DONE {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
