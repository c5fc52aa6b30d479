"""The parsing child: reads an uploaded file, checks every row, writes the staging file.

Run as ``python -m kontak.import_job.stage SPEC.json`` by the runner, with its address
space capped first thing, so that a hostile workbook (python-calamine can abort the whole
process) or a runaway parse ends this process only. Protocol on stdout, one line each:
``PROGRESS <rows> <estimated total>``, with ``segments`` in the spec also
``SEGMENT <number> <rows> <invalid rows> <path>`` as each segment of the file is staged
(see :func:`_in_parallel`), then ``DONE <rows>`` (exit 0) or ``REJECT <json message>``
(exit 3).
"""

from __future__ import annotations

import collections
import gc
import itertools
import json
import multiprocessing
import os
import queue
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kontak import sqlite_config
from kontak.children import die_with_parent
from kontak.custom_field.values import FieldSpec
from kontak.files.csv_reader import read_csv
from kontak.files.errors import FileRejected
from kontak.files.headers import CUSTOM_PREFIX, map_headers
from kontak.files.sniff import sniff
from kontak.files.table import Limits, Table
from kontak.ids import id_start, sequence_from
from kontak.import_job.checks import RowChecker
from kontak.import_job.staging import Stage, prepare
from kontak.messages import Text
from kontak.native import is_compiled

EXIT_REJECTED = 3
PROGRESS_EVERY_S = 0.2
CHUNK_ROWS = 2000
Chunk = list[tuple[int, list[Any]]]
# A cell may list any number of handles: each chunk's social ids get a range far larger
# than it can use (id_start() leaves 2**79 above it; a million rows use ~2**49).
SOCIAL_IDS_PER_CHUNK = 2**40
PARALLEL_FROM_ROWS = 20_000  # smaller files are checked faster than worker processes start
# What reading a row to drop it costs next to checking it, by kind of file, as measured: a
# CSV is read again from its start by each worker. 1M rows, two workers: split evenly, the
# second ended 1.0-2.2 s after the first (three runs); split with this, -0.8 to +0.9 s
# (three runs; 0.055, reading alone against checking alone, made it end ~1 s early). A
# workbook's rows are reread from cells loaded before the fork.
SKIP_COST = {"csv": 0.03}


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
    path = Path(spec["stage"])
    estimated = table.estimated_rows or 0
    workers = int(spec.get("workers", 1)) if estimated >= PARALLEL_FROM_ROWS else 1
    segments = int(spec.get("segments", 0))
    niceness = 0
    if segments and workers > 1:  # the runner writes segments while the workers check
        niceness = int(spec.get("worker_niceness", 0))
        sys.stderr.write(f"workers: {workers}, niceness +{niceness}\n")
    job = _Job(kind, source, limits, checker, estimated, id_start(), id_start(), niceness)
    try:
        if workers <= 1:
            stage = Stage(path, create=True)
            try:
                count = 0
                for number, chunk in enumerate(_chunks(table.rows, CHUNK_ROWS)):
                    job.stage_chunk(number, chunk, stage)
                    count += len(chunk)
                    _progress(count, estimated)
                stage.flush()
            finally:
                stage.close()
            tags, pending = stage.tags, list[str]()
        else:
            count, tags, pending = _in_parallel(job, table, path, workers, segments)
    finally:
        table.close()
    if count == 0:
        raise FileRejected("file.header_only")
    stage = Stage(path)
    try:
        stage.finish(
            {
                "format": kind,
                "headers": table.headers,
                "header_row": table.header_row,
                "rows_total": count,
                "encoding": table.encoding,
                "delimiter": table.delimiter,
            },
            tags,
            pending,
        )
    finally:
        stage.close()
    return count


_last_progress = 0.0


def _progress(count: int, estimated: int) -> None:
    global _last_progress
    now = time.monotonic()
    if now - _last_progress >= PROGRESS_EVERY_S:
        _last_progress = now
        _say(f"PROGRESS {count} {max(estimated, count)}")


@dataclass(frozen=True, slots=True)
class _Job:
    """What every process that checks rows of one file needs (inherited through fork)."""

    kind: str
    source: Path
    limits: Limits
    checker: RowChecker
    estimated: int
    start: int  # contact ids follow it by data row, so they follow the file
    social_start: int  # social account ids: SOCIAL_IDS_PER_CHUNK of them per chunk
    niceness: int = 0  # added to the workers' that stage segments (see run's spec)

    def stage_chunk(self, number: int, chunk: Chunk, stage: Stage) -> None:
        """Check and stage chunk ``number`` (``CHUNK_ROWS`` rows, the last maybe fewer)."""
        # Each chunk draws from ranges of its own: workers never draw the same id.
        ids = sequence_from(self.start + number * CHUNK_ROWS)
        social_ids = sequence_from(self.social_start + number * SOCIAL_IDS_PER_CHUNK)
        for prepared in prepare(self.checker, chunk, ids, social_ids):
            stage.add(prepared)


def _in_parallel(
    job: _Job, table: Table, path: Path, workers: int, segments: int = 0
) -> tuple[int, set[str], list[str]]:
    """Stage the file with ``workers`` forked processes (both cores). Each takes a run of
    consecutive chunks (``CHUNK_ROWS`` rows each; the file's estimated size splits them,
    the last worker takes whatever is left) and writes staging files of its own, appended
    to the job's staging file in file order at the end. Every worker reads the rows
    itself and skips those before its run, so that no row crosses a pipe: a CSV is opened
    again by each (reading is cheap next to checking), a workbook is read from the cells
    this process loaded before forking (``Table.reread``; shared, not copied). Handing a
    workbook's chunks out from here through bounded queues made the workers take turns:
    the second waited while the first checked the whole first half (1M rows: 17.6 s).

    Without ``segments`` a worker writes one file, the first worker the job's staging
    file itself. With ``segments`` (at least one a worker) each worker's run is cut in
    parts (:func:`_starts`), each staged to a file of its own (:func:`segment_path`,
    numbered in file order) and announced (``SEGMENT``) once complete, so that the runner can write
    its rows while the rest is being checked (``import_job.stream``); the job's staging
    file is then assembled from all of them, which are left for the runner to remove."""
    context = multiprocessing.get_context("fork")
    done = context.Array("q", workers, lock=False)  # rows staged, per worker
    results = context.Queue()
    chunks = max(1, -(-job.estimated // CHUNK_ROWS))
    firsts = _firsts(chunks, workers, SKIP_COST.get(job.kind, 0.0))
    ends = [*firsts[1:], None]
    per_worker = segments // workers  # 0: no segments (also with more workers than them)
    if per_worker:
        files = [
            [segment_path(path, w * per_worker + i) for i in range(per_worker)]
            for w in range(workers)
        ]
    else:
        files = [[path], *([path.with_name(f"{path.stem}.part{w}.db")] for w in range(1, workers))]
    plans = [
        _Plan(
            w,
            _starts(firsts[w], ends[w] or chunks, len(files[w])),
            ends[w],
            files[w],
            w * per_worker if per_worker else None,
        )
        for w in range(workers)
    ]
    processes = [
        context.Process(target=_worker, args=(job, table.reread, plan, done, results), daemon=True)
        for plan in plans
    ]
    for process in processes:
        process.start()
    try:
        count, tags = 0, set[str]()
        finished = 0
        while finished < workers:
            message = _next_result(results, processes, lambda: _progress(sum(done), job.estimated))
            if message[0] == "segment":
                _, number, rows, invalid = message
                _say(f"SEGMENT {number} {rows} {invalid} {segment_path(path, number)}")
                # Segments may come closer together than the progress is told (queue
                # timeouts alone would then never tell it).
                _progress(sum(done), job.estimated)
                continue
            finished += 1
            count += message[1]
            tags.update(message[2])
        for process in processes:
            process.join()
        if per_worker:
            Stage(path, create=True).close()
            return count, tags, [f.name for run in files for f in run]
        Stage.append(path, [f for run in files[1:] for f in run])
        return count, tags, []
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        if not per_worker:
            for run in files[1:]:
                for part in run:
                    part.unlink(missing_ok=True)


SEGMENT_PREFIX = "stage.seg"


def segment_path(stage: Path, number: int) -> Path:
    """The staging file of segment ``number`` of the job whose staging file is ``stage``."""
    return stage.with_name(f"{stage.stem}.seg{number}.db")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one worker stages: from chunk ``starts[0]`` to ``end`` (excluded; None: the
    end of the file), into ``files[i]`` from chunk ``starts[i]`` on; those are segments
    numbered from ``first_segment`` on, or (None) one plain part."""

    worker: int
    starts: list[int]
    end: int | None
    files: list[Path]
    first_segment: int | None


def _starts(first: int, stop: int, parts: int) -> list[int]:
    """The first chunks of ``parts`` parts of chunks ``first`` to ``stop``, sized by
    :func:`_segment_weights`."""
    weights = _segment_weights(parts)
    total, span = sum(weights), max(0, stop - first)
    return [first + span * sum(weights[:i]) // total for i in range(parts)]


# The relative sizes of a worker's segments: equal, but the last three shrink. The runner
# writes each segment while the next ones are checked; what is left to write once the
# checking ends (the last segments of every worker) is written alone, one core idle, and
# the commit waits for it. 1M rows, ten segments, through the server (session 40,
# alternated pairs): equal sizes against 1, 2, 2, 2, 1 ratio 0.98; these against equal
# sizes 0.97.
_BODY_WEIGHT = 12
_TAIL_WEIGHTS = (10, 8, 5)


def _segment_weights(parts: int) -> list[int]:
    """The relative sizes of ``parts`` consecutive segments of one worker's run."""
    tail = list(_TAIL_WEIGHTS[max(0, len(_TAIL_WEIGHTS) - parts) :])
    return [_BODY_WEIGHT] * (parts - len(tail)) + tail


def _firsts(chunks: int, workers: int, skip_cost: float) -> list[int]:
    """The first chunk of each worker's run. A worker reads (and drops) the rows before its
    run, at ``skip_cost`` of the cost of checking a row: the later a run, the shorter, so
    that all end together (worker w starts at x_w, with s·x_w + c·n_w the same for all)."""
    if skip_cost <= 0:
        return [w * chunks // workers for w in range(workers)]
    kept = 1 - skip_cost
    return [round(chunks * (1 - kept**w) / (1 - kept**workers)) for w in range(workers)]


def _worker(
    job: _Job,
    reread: Callable[[], Iterator[tuple[int, list[Any]]]] | None,
    plan: _Plan,
    done: Any,
    results: Any,
) -> None:
    """One worker process: stage its chunks as ``plan`` says, announcing each segment as
    ("segment", number, rows, invalid rows); then report ("ok", rows, tags), or the
    reason the file is rejected."""
    me, first, end = plan.worker, plan.starts[0], plan.end
    started, cpu = time.monotonic(), time.process_time()
    die_with_parent()  # not inherited through fork: a killed child leaves no worker behind
    if plan.first_segment is not None and job.niceness:
        os.nice(job.niceness)
    table: Table | None = None
    part = 0
    stage = Stage(plan.files[0], create=True)
    tags: set[str] = set()
    try:
        if reread is None:
            table = _open(job.kind, job.source, job.limits)
            rows = table.rows
        else:
            rows = reread()
        # The rows before this worker's run are read only to know where it starts (their
        # records and numbers): dropped as they come, never gathered into chunks.
        rows = iter(rows)
        collections.deque(itertools.islice(rows, first * CHUNK_ROWS), maxlen=0)
        skipped = time.monotonic() - started
        numbered = enumerate(_chunks(rows, CHUNK_ROWS), start=first)
        mine = itertools.takewhile(lambda item: end is None or item[0] < end, numbered)
        for number, chunk in mine:
            while part + 1 < len(plan.files) and number >= plan.starts[part + 1]:
                tags |= _close_segment(stage, plan, part, results)
                part += 1
                stage = Stage(plan.files[part], create=True)
            job.stage_chunk(number, chunk, stage)
            done[me] += len(chunk)
        stage.flush()
        tags |= stage.tags
        if plan.first_segment is not None:
            _close_segment(stage, plan, part, results)
            for later in range(part + 1, len(plan.files)):  # the file ended before these
                stage = Stage(plan.files[later], create=True)
                _close_segment(stage, plan, later, results)
        # What balances the workers' runs (SKIP_COST) and the segments, in the child's
        # log (the job folder's stage.log).
        sys.stderr.write(
            f"worker {me}: {done[me]} rows from chunk {first} in {time.monotonic() - started:.2f} s"
            f" (CPU {time.process_time() - cpu:.2f} s; the rows before its run read in"
            f" {skipped:.2f} s)\n"
        )
        results.put(("ok", done[me], sorted(tags)))
    except FileRejected as exc:
        results.put(("reject", exc.message.to_json()))
    except MemoryError:
        results.put(("reject", Text("file.memory").to_json()))
    finally:
        stage.close()
        if table is not None:
            table.close()


def _close_segment(stage: Stage, plan: _Plan, part: int, results: Any) -> set[str]:
    """Complete part ``part`` of a segmented ``plan`` and announce it; returns its tags."""
    assert plan.first_segment is not None
    stage.flush()
    stage.close()
    results.put(("segment", plan.first_segment + part, stage.rows_added, stage.invalid_rows))
    return stage.tags


def _next_result(results: Any, processes: list[Any], tick: Callable[[], None]) -> Any:
    while True:
        try:
            message = results.get(timeout=PROGRESS_EVERY_S)
        except queue.Empty:
            _check_workers(processes, results)
            tick()
            continue
        if message[0] == "reject":
            raise FileRejected.from_json(message[1])
        return message


def _check_workers(processes: list[Any], results: Any) -> None:
    """A worker that died without a word (a signal, the memory cap) ends the staging."""
    for process in processes:
        if process.exitcode not in (None, 0):
            try:  # it may have said why just before it ended
                message = results.get(timeout=0.5)
            except queue.Empty:
                message = None
            if message and message[0] == "reject":
                raise FileRejected.from_json(message[1])
            raise RuntimeError(f"a parsing worker ended with exit code {process.exitcode}")


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


def _quiet_collector() -> None:
    """Rows make millions of short-lived tuples and lists and no reference cycles, yet each
    allocation burst makes Python's cycle collector walk every live object: that was half
    the CPU of a big import. Objects alive now are never walked again, and collections run
    far less often (memory stays bounded by RLIMIT_AS and by the chunks in flight)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 50, 1_000)


def main(argv: list[str]) -> int:
    die_with_parent()
    _quiet_collector()
    sys.stderr.write(f"parser: {'compiled' if is_compiled() else 'plain Python'}\n")
    statistics = "off" if sqlite_config.memory_statistics_off else "on"
    sys.stderr.write(f"SQLite memory statistics: {statistics}\n")
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
