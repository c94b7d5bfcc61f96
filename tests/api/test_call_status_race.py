"""A status change never overwrites a concurrent hangup (a BYE racing the answer)."""

from __future__ import annotations

import asyncio

from tests.api.support import Api
from voipbin.store.tables import Call


async def _ringing_call(api: Api) -> Call:
    row = Call(
        customer_id=api.admin.created.customer.id,
        source={},
        destination={},
        status="ringing",
        direction="incoming",
        variables={},
        metadata_={},
        chained_call_ids=[],
        recording_ids=[],
        action={},
    )
    async with api.platform.db.session() as s:
        s.add(row)
        await s.commit()
    return row


async def test_answer_after_hangup_is_refused(api: Api) -> None:
    row = await _ringing_call(api)
    assert await api.platform.call_records.finish(row.id, reason="cancel", by="remote") is not None
    assert await api.platform.call_records.set_status(row.id, "progressing") is None
    async with api.platform.db.session() as s:
        final = await s.get(Call, row.id)
    assert final is not None and final.status == "hangup" and final.hangup_reason == "cancel"


async def test_concurrent_answer_and_hangup_end_in_hangup(api: Api) -> None:
    rows = [await _ringing_call(api) for _ in range(10)]
    await asyncio.gather(
        *(
            op
            for r in rows
            for op in (
                api.platform.call_records.set_status(r.id, "progressing"),
                api.platform.call_records.finish(r.id, reason="normal"),
            )
        )
    )
    async with api.platform.db.session() as s:
        for r in rows:
            final = await s.get(Call, r.id)
            assert final is not None and final.status == "hangup" and final.tm_hangup is not None
