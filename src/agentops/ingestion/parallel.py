"""Parse a large JSON Lines file in worker processes, chunks coming back in file order.

On SQLite, parsing and validating a tau-sized record costs more CPU than storing it, and
it holds the GIL: in one process, parser and writer take turns. Here this process only
cuts the file into blocks of whole lines (counting newlines, at memory speed) and writes
rows; worker processes read and parse the blocks in parallel, each the way `JsonRecords`
would line by line, so labels and rejection reasons are the same. PostgreSQL stores rows
in its own server processes, which overlap with parsing in the importer's thread already;
extra parsing processes would only take CPU from the server.

Workers start with `spawn` (a forked child would inherit this process's threads' locks
and its database connections), which re-imports the caller's main module: like any
multiprocessing code, a script that imports with `parallel=True` needs the usual
`if __name__ == "__main__":` guard. The CLI has it.
"""

import io
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeGuard

from agentops.ingestion.files import JsonRecords, parse_line
from agentops.ingestion.rows import Chunk, RowBuilder, RowSettings

# Below this (about 15k tau-sized records) starting worker processes costs more than it saves.
MIN_BYTES = 256 * 2**20
# Two processes parsing beside this one (which reads and writes) keep two cores busy.
MAX_PROCESSES = 2
WORKER_NICENESS = 10

Block = tuple[int, int, int]  # first line number, byte offset, length

_builder: RowBuilder | None = None
_file: BinaryIO | None = None


def worthwhile(records: object, settings: RowSettings) -> TypeGuard[JsonRecords]:
    """Whether to parse in worker processes: a big JSON Lines file, SQLite, several cores."""
    return (
        isinstance(records, JsonRecords)
        and records.path is not None
        and records.size >= MIN_BYTES
        and settings.dialect.name == "sqlite"
        and (os.cpu_count() or 1) > 1
    )


def parallel_chunks(records: JsonRecords, settings: RowSettings) -> Generator[Chunk, None, None]:
    """The file's chunks, cut like RowBuilder.chunks cuts them, parsed in worker processes."""
    if records.path is None:
        raise ValueError("only a JSON Lines file can be parsed in parallel")
    processes = min(MAX_PROCESSES, os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_start_worker, initargs=(settings,)
    ) as pool:
        pending: deque[Future[Chunk]] = deque()
        try:
            for block in line_blocks(records, settings):
                pending.append(pool.submit(_parse_block, str(records.path), block))
                # One block waiting beyond those being parsed: no worker idles, and memory
                # stays bounded.
                if len(pending) > processes:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def line_blocks(records: JsonRecords, settings: RowSettings) -> Iterator[Block]:
    """Consecutive blocks of whole lines, each of at most chunk_records lines and about
    chunk_bytes (a single longer line makes a block of its own); counts bytes_read."""
    assert records.path is not None
    with records.path.open("rb") as handle:
        number, offset, data = 1, 0, b""
        while True:
            if len(data) < settings.chunk_bytes:
                data += handle.read(settings.chunk_bytes - len(data))
            if not data:
                return
            end = _cut(data, settings.chunk_records)
            while end is None:  # no newline: a line longer than chunk_bytes, or the last one
                more = handle.read(settings.chunk_bytes)
                if not more:
                    end = len(data)
                    break
                data += more
                end = _cut(data, settings.chunk_records)
            # Only the file's last line can lack its newline; it is a line all the same.
            lines = data.count(b"\n", 0, end) + (data[end - 1 : end] != b"\n")
            yield number, offset, end
            number += lines
            offset += end
            data = data[end:]
            records.bytes_read = offset


def _cut(data: bytes, max_lines: int) -> int | None:
    """Where a block of data should end: after its max_lines-th newline, or its last."""
    position = -1
    for _ in range(max_lines):
        found = data.find(b"\n", position + 1)
        if found < 0:
            break
        position = found
    else:
        return position + 1
    last = data.rfind(b"\n")
    if last >= 0:
        return last + 1
    return None


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to kill this worker when the importer dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the pool's own broken-pipe detection ends idle workers
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the importer was gone before the request took effect
        os._exit(1)


def _start_worker(settings: RowSettings) -> None:
    global _builder
    # Ctrl-C reaches the whole process group: the importer, not its workers, handles it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    # The writer is the bottleneck: on a machine with fewer free cores than processes, the
    # kernel should run it first and give the parsers what is left.
    os.nice(WORKER_NICENESS)
    _builder = RowBuilder(settings)


def _parse_block(path: str, block: Block) -> Chunk:
    global _file
    assert _builder is not None, "worker not started"
    number, offset, length = block
    if _file is None:
        _file = Path(path).open("rb")  # noqa: SIM115 - kept open for the worker's life
    _file.seek(offset)
    data = _file.read(length)
    chunk = Chunk()
    # Lines split as file iteration splits them (at b"\n", kept), so reasons match.
    for line_number, line in enumerate(io.BytesIO(data), start=number):
        parsed = parse_line(line_number, line)
        if parsed is not None:
            _builder.add(chunk, *parsed)
    return chunk
