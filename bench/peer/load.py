"""The load generator: closed loop (N clients, one keep-alive connection each) and open loop (a fixed rate,
latency from each request's scheduled time), over bench/common.py's RawHttp. It reports its own CPU per request,
so a figure limited by the client shows itself."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from common import RawHttp, percentile
from target import Target, Template


@dataclass
class Run:
    """What one loop measured."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    created: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    shed: int = 0

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("2"))

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        """Latency percentile in ms."""
        return percentile(self.latencies, q) * 1000

    @property
    def errors(self) -> str:
        bad = {s: n for s, n in self.statuses.items() if not s.startswith("2")}
        text = ", ".join(f"{n}x {s}" for s, n in sorted(bad.items()))
        return (text + (f", {self.shed} shed" if self.shed else "")) or "-"

    def client_ms(self) -> float:
        """This process's CPU per answered request, ms."""
        return self.client_cpu / max(1, self.answered) * 1000


async def _one(conn: RawHttp, template: Template, n: int, ids: list[str], run: Run, t0: float,
               rng: random.Random) -> None:
    path, payload = template.render(n, rng.choice(ids) if ids else "")
    status, content = await conn.request(template.method, path, payload)
    run.latencies.append(time.perf_counter() - t0)
    run.statuses[status] += 1
    if template is not None and status.startswith("2") and payload is not None and template.method == "POST":
        created = template.created_id(content)
        if created is not None:
            run.created.append(created)


async def closed_loop(target: Target, op: str, clients: int, seconds: float, ids: list[str] | None = None,
                      max_requests: int = 10_000_000) -> Run:
    """`clients` connections, each sending its next request as soon as the previous one is answered."""
    template = target.templates[op]
    run = Run()
    counter = itertools.count(1)
    conns = [RawHttp(target.base_url, headers=target.headers) for _ in range(clients)]
    known = ids or []
    cpu0 = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds

    async def client(index: int) -> None:
        rng = random.Random(index)
        while (now := time.perf_counter()) <= deadline:
            n = next(counter)
            if n > max_requests:
                return
            await _one(conns[index], template, n, known, run, now, rng)

    await asyncio.gather(*(client(i) for i in range(clients)))
    run.elapsed = time.perf_counter() - started
    run.client_cpu = time.process_time() - cpu0
    for conn in conns:
        await conn.close()
    return run


async def open_loop(target: Target, op: str, rate: float, seconds: float, ids: list[str] | None = None,
                    drain: float = 10.0, connections: int = 256, max_queued: int = 2_000) -> Run:
    """Requests scheduled at `rate` per second whatever the server does, sent by a pool of keep-alive connections;
    latency counts from each one's scheduled time (no coordinated omission). Beyond max_queued waiting, the newest
    is shed (counted); those unanswered `drain` seconds after the last is due count as 'unfinished'."""
    template = target.templates[op]
    run = Run()
    known = ids or []
    rng = random.Random(7)
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue(maxsize=max_queued)

    async def sender(conn: RawHttp) -> None:
        while True:
            n, scheduled = await queue.get()
            try:
                await _one(conn, template, n, known, run, scheduled, rng)
            finally:
                queue.task_done()

    conns = [RawHttp(target.base_url, headers=target.headers) for _ in range(connections)]
    senders = [asyncio.create_task(sender(c)) for c in conns]
    total = int(rate * seconds)
    cpu0 = time.process_time()
    started = time.perf_counter()
    for i in range(total):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            queue.put_nowait((i + 1, scheduled))
        except asyncio.QueueFull:
            run.shed += 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.join(), timeout=drain)
    run.elapsed = min(time.perf_counter() - started, seconds)
    run.client_cpu = time.process_time() - cpu0
    unfinished = total - run.shed - run.answered
    if unfinished > 0:
        run.statuses["unfinished"] += unfinished
    for task in senders:
        task.cancel()
    await asyncio.gather(*senders, return_exceptions=True)
    for conn in conns:
        await conn.close()
    return run
