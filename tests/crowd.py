"""A crowd of HTTP clients on asyncio, for the flash-crowd tests and bench/booking_flash.py: every request of the
crowd on a connection of its own (up to `connections` at once), all opened first and sent at the same moment,
as patients' phones do when a day's appointments open.

Plain HTTP/1.1 over asyncio streams (the standard library: no client package), with a JSON body and a
Content-Length answer, which is what the platform sends. Each answer records its status, its `error` code (or
None) and its latency from the moment the request was written to the end of the answer.
"""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    error: str | None
    latency_s: float
    document: object = None

    @property
    def outcome(self) -> str:
        """`201`, `409 slot_sold_out`, `599 ConnectionResetError`..."""
        return f"{self.status} {self.error}" if self.error else str(self.status)


@dataclass(frozen=True)
class CrowdRun:
    answers: list[Answer]
    wall_s: float

    def count(self, status: int, error: str | None = None) -> int:
        return sum(a.status == status and (error is None or a.error == error) for a in self.answers)

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for answer in self.answers:
            counts[answer.outcome] = counts.get(answer.outcome, 0) + 1
        return dict(sorted(counts.items()))


def run_crowd(base_url: str, calls: list[Call], connections: int, timeout_s: float = 120.0,
              during=None) -> CrowdRun:
    """Send every call, up to `connections` at once, and wait for every answer. `during(done_count)` (optional)
    is called from the event loop's thread each time an answer arrives (to act in the middle of a crowd).

    The crowd runs on a thread of its own with its own event loop: the caller's thread may already run one
    (Playwright's sync API leaves its loop running in the test session's main thread)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crowd") as pool:
        return pool.submit(asyncio.run, _crowd(base_url, calls, connections, timeout_s, during)).result()


async def _crowd(base_url: str, calls: list[Call], connections: int, timeout_s: float, during) -> CrowdRun:
    parts = urlsplit(base_url)
    host, port = parts.hostname, parts.port or 80
    pending = list(reversed(calls))
    answers: list[Answer] = []
    go = asyncio.Event()

    async def connection() -> None:
        reader = writer = None
        while pending:
            call = pending.pop()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
                    await go.wait()
                answer, keep = await asyncio.wait_for(_exchange(reader, writer, host, port, call), timeout_s)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                answer, keep = Answer(599, type(exc).__name__, 0.0), False
            answers.append(answer)
            if during is not None:
                during(len(answers))
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(min(connections, len(calls)))]
    await asyncio.sleep(0.2)  # every connection opened (or opening): then all at once
    started = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return CrowdRun(answers, time.perf_counter() - started)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int,
                    call: Call) -> tuple[Answer, bool]:
    body = json.dumps(call.body).encode() if call.body is not None else b""
    head = [f"{call.method} {call.path} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json",
            f"Content-Length: {len(body)}"]
    if call.body is not None:
        head.append("Content-Type: application/json")
    head += [f"{name}: {value}" for name, value in call.headers.items()]
    started = time.perf_counter()
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "connection" and value.strip().lower() == "close":
            keep = False
    payload = await reader.readexactly(length) if length else b""
    latency = time.perf_counter() - started
    document = None
    try:
        document = json.loads(payload) if payload else None
    except ValueError:
        pass
    error = document.get("error") if isinstance(document, dict) else None
    return Answer(status, error, latency, document), keep
