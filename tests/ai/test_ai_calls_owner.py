"""The aicalls/aimessages owner: rows written through the group commit, sums of turns, recovery."""

from __future__ import annotations

import uuid
from pathlib import Path

from voipbin.ai.calls import AICalls
from voipbin.config import Settings
from voipbin.events.bus import EventBus
from voipbin.security import Passwords
from voipbin.store.db import Database
from voipbin.store.owner import NodeOwner
from voipbin.store.tables import AICall, AIMessage
from voipbin.store.writer import WriteBehind
from voipbin.tenants import create_customer


async def setup(tmp_path: Path, owner: NodeOwner) -> tuple[Database, AICalls, uuid.UUID]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'ai.db'}")
    await db.migrate()
    async with db.session() as session:
        created = await create_customer(
            session,
            passwords=Passwords.from_settings(Settings()),
            initial_balance=0,
            name="c",
            username="c",
            password="pass-word-1",
        )
        await session.commit()
    return db, AICalls(db, WriteBehind(db), EventBus(), owner), created.customer.id


async def test_rows_messages_and_sums_are_stored(tmp_path: Path) -> None:
    db, aicalls, customer = await setup(tmp_path, NodeOwner("n1"))
    sub = aicalls.events.subscribe()
    record = aicalls.new(
        customer, activeflow_id=uuid.uuid4(), reference_type="call", reference_id=uuid.uuid4(),
        engine_model="openai.gpt-4o-mini", tts_type="piper", stt_type="whisper",
    )  # fmt: skip
    record.set_status("progressing")
    record.add_message("user", "hi")
    turn = {"llm": "openai.gpt-4o-mini", "tts": "piper", "interrupted": True,
            "usage": {"input_tokens": 10, "output_tokens": 3, "tts_characters": 12}}  # fmt: skip
    record.add_message("assistant", "Hello there, friend.", turn=turn)
    record.add_message("assistant", "More.", turn={**turn, "interrupted": False})
    record.add_stt_seconds("whisper", 2.5)
    record.end("stop_service")
    record.set_status("terminated")
    assert record.id not in aicalls.live
    await aicalls.writer.flush()
    async with db.session() as session:
        row = await session.get(AICall, record.id)
        assert row is not None and row.status == "terminated" and row.tm_end is not None
        meta = row.metadata_
        assert meta["usage"]["input_tokens"] == 20 and meta["usage"]["stt_seconds"] == 2.5
        assert meta["usage_by_engine"] == {
            "openai.gpt-4o-mini": {"input_tokens": 20, "output_tokens": 6},
            "piper": {"tts_characters": 24},
            "whisper": {"stt_seconds": 2.5},
        }
        assert meta["turns"] == 2 and meta["interruptions"] == 1 and meta["end_reason"] == "stop_service"
    messages = await aicalls.messages(record.id)
    assert [m.role for m in messages] == ["user", "assistant", "assistant"]
    assert messages[1].turn["usage"]["output_tokens"] == 3 and messages[0].direction == "incoming"
    types = []
    while not sub.queue.empty():
        types.append(sub.queue.get_nowait().type)
    assert types == ["aicall_status_initializing", "aicall_status_progressing", "aimessage_created",
                     "aimessage_created", "aimessage_created", "aicall_status_terminated"]  # fmt: skip
    deleted = await aicalls.soft_delete(record.id)
    assert deleted is not None and deleted.tm_delete is not None
    async with db.session() as session:
        gone = await session.get(AIMessage, messages[0].id)
        assert gone is not None and gone.tm_delete is not None
    await aicalls.writer.close()
    await db.close()


async def test_a_restart_terminates_what_an_earlier_boot_left_live(tmp_path: Path) -> None:
    db, first, customer = await setup(tmp_path, NodeOwner("n1"))
    left = first.new(customer, activeflow_id=uuid.uuid4(), reference_type="call", reference_id=uuid.uuid4())
    left.set_status("progressing")
    other_node = AICalls(db, first.writer, first.events, NodeOwner("n2"))
    theirs = other_node.new(
        customer, activeflow_id=uuid.uuid4(), reference_type="call", reference_id=uuid.uuid4()
    )
    await first.writer.flush()
    restarted = AICalls(db, first.writer, EventBus(), NodeOwner("n1"))
    sub = restarted.events.subscribe()
    assert await restarted.recover("the platform restarted") == 1
    async with db.session() as session:
        row = await session.get(AICall, left.id)
        assert row is not None and row.status == "terminated" and row.tm_end is not None
        assert row.metadata_["end_reason"] == "restart"
        untouched = await session.get(AICall, theirs.id)
        assert untouched is not None and untouched.status == "initiating"  # another node's row
    assert sub.queue.get_nowait().type == "aicall_status_terminated"
    await first.writer.close()
    await db.close()
