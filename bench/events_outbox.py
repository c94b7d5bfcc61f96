"""What the durable webhook outbox costs a call's record writes, measured side by side in one run.

Runs N concurrent call lifecycles through the real ``CallRecords`` on SQLite (insert ``dialing`` →
``ringing`` → ``progressing`` → ``hangup``, group-committed, 4 events each) for: (1) a customer without a
webhook (no outbox rows: the bus skips its events without serializing them) and (2) a customer whose
webhook is a loopback receiver (every event serialized, stored in the transaction of its change and
delivered). It reports call lifecycles/s for both, their ratio, and how fast the outbox then delivered
(events/s to the receiver, one destination, in order).

    .venv/bin/python bench/events_outbox.py [--calls 500]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from sqlalchemy import update  # noqa: E402

from voipbin.calls.state import Status  # noqa: E402
from voipbin.config import Settings  # noqa: E402
from voipbin.node import build_node, start_node, stop_node  # noqa: E402
from voipbin.store.tables import Customer  # noqa: E402
from voipbin.tenants import bootstrap  # noqa: E402


async def receiver() -> tuple[asyncio.Server, list[int]]:
    count = [0]

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(ln.split(b":")[1])
                    for ln in head.split(b"\r\n")
                    if ln.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                count[0] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    return await asyncio.start_server(conn, "127.0.0.1", 0), count


async def lifecycles(n: int, webhook: bool, receiver_down: bool = False) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/b.db"
        node = build_node(
            Settings(data_dir=Path(tmp), database_url=url, admin_password="x" * 12, telephony=False)
        )
        await node.db.migrate()
        created = await bootstrap(node.db, node.settings)
        assert created is not None
        server, delivered = await receiver()
        if webhook:
            port = server.sockets[0].getsockname()[1]
            if receiver_down:
                server.close()  # nothing listens: the rows are stored, one probe at a time fails
            async with node.db.session() as s:
                await s.execute(
                    update(Customer)
                    .where(Customer.id == created.customer.id)
                    .values(webhook_uri=f"http://127.0.0.1:{port}/hook")
                )
                await s.commit()
        await start_node(node)
        records = node.call_records
        cid = created.customer.id

        async def one() -> None:
            c = records.new_call(
                cid, source={"type": "tel", "target": "+15551234567"},
                destination={"type": "tel", "target": "+15559876543"}, direction="outgoing",
            )  # fmt: skip
            await records.add([c])
            await records.set_status(c.id, Status.RINGING)
            await records.set_status(c.id, Status.PROGRESSING)
            await records.finish(c.id, reason="normal")

        try:
            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            rate = n / (time.perf_counter() - started)
            delivery = 0.0
            if webhook and not receiver_down:
                async with asyncio.timeout(120):
                    while delivered[0] < 4 * n:  # noqa: ASYNC110  (a counter, polled)
                        await asyncio.sleep(0.01)
                delivery = 4 * n / (time.perf_counter() - started)
            return rate, delivery
        finally:
            server.close()
            await stop_node(node)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    args = ap.parse_args()
    await lifecycles(50, True)  # warm up
    base, _ = await lifecycles(args.calls, False)
    stored_only, _ = await lifecycles(args.calls, True, receiver_down=True)
    with_hook, delivery = await lifecycles(args.calls, True)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"{args.calls} concurrent call lifecycles (4 status events each), SQLite, group commit")
    print(f"  no webhook (no outbox rows)      {base:8.0f} calls/s")
    print(f"  webhook down (outbox rows only)  {stored_only:8.0f} calls/s   ratio {stored_only / base:.2f}")
    print(f"  webhook (outbox + delivery)      {with_hook:8.0f} calls/s   ratio {with_hook / base:.2f}")
    print(f"  outbox delivery to one receiver  {delivery:8.0f} events/s (in order, from the first setup)")


if __name__ == "__main__":
    asyncio.run(main())
