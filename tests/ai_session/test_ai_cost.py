"""AI usage is charged per aicall with itemized ledger lines per engine, at the configured rates; an
account that runs dry ends the conversation politely (spoken notice) and the flow goes on."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from fakeproviders.llm_openai import FakeOpenAI
from fakeproviders.llm_server import FakeToolCall, Reply
from tests.ai_session.support import Events
from tests.flow.conftest import Env
from voipbin.api.routes.billing import billing_to_api
from voipbin.billing.ai import AIRates, cost_lines
from voipbin.billing.ledger import account_for
from voipbin.store.tables import Billing

GREETING = "Hello, thanks for calling."


def flow(**option: object) -> list[dict]:
    return [
        {"type": "ai_talk", "option": {"initial_prompt": "Be brief.", "engine_model": "openai.gpt-4o-mini",
                                       "greeting": True, **option}},
        {"type": "variable_set", "option": {"key": "after_ai", "value": "ran"}},
    ]  # fmt: skip


async def lines_of(env: Env, aicall_id: uuid.UUID) -> list[Billing]:
    async with env.platform.db.session() as session:
        q = select(Billing).where(Billing.reference_id == aicall_id).order_by(Billing.cost_type)
        return list((await session.execute(q)).scalars().all())


@pytest.mark.parametrize("ai_env", [{"ai_charge_local": True}], indirect=True)
async def test_ledger_lines_add_up_for_known_counts(ai_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ai_env.platform.db.session() as session:
        before = (await account_for(session, ai_env.customer_id)).balance_credit
    async with FakeOpenAI() as fake:
        stop = FakeToolCall("call_1", "stop_service", ["{}"])  # ends the session once the greeting played
        fake.push(
            Reply(
                text=["Hello, ", "thanks for calling."], tool_calls=[stop], input_tokens=120, output_tokens=9
            )
        )
        monkeypatch.setenv("VOIPBIN_OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("VOIPBIN_OPENAI_BASE_URL", fake.base_url)
        _call, af = await ai_env.run(flow(tool_names=["stop_service"]), within=30)
    assert af.variables["after_ai"] == "ran"
    aicall_id = uuid.UUID(af.variables["voipbin.aicall.id"])
    await ai_env.platform.writer.flush()
    row = await ai_env.platform.aicalls.get(aicall_id)
    assert row is not None
    stt_seconds = row.metadata_["usage_by_engine"]["whisper"]["stt_seconds"]
    lines = {(b.provider, b.cost_type): b for b in await lines_of(ai_env, aicall_id)}
    expected = {
        ("openai.gpt-4o-mini", "ai_llm_input_token"): (120, 1),
        ("openai.gpt-4o-mini", "ai_llm_output_token"): (9, 4),
        ("piper", "ai_tts_character"): (len(GREETING), 30),
        ("whisper", "ai_stt_second"): (-(-stt_seconds // 1), 100),  # whole seconds, rounded up
    }
    assert set(lines) == set(expected)
    for key, (units, rate) in expected.items():
        b = lines[key]
        assert (b.billable_units, b.rate_credit_per_unit, b.amount_credit) == (units, rate, -units * rate), (
            key
        )
        assert b.reference_type == "aicall" and b.transaction_type == "usage"
        shown = billing_to_api(b)  # as GET /v1.0/billings shows it
        assert (shown["provider"], shown["cost_type"], shown["amount_credit"]) == (*key, -units * rate)
    total = sum(units * rate for units, rate in expected.values())
    async with ai_env.platform.db.session() as session:
        after = (await account_for(session, ai_env.customer_id)).balance_credit
    assert before - after == total == row.metadata_["cost_credit"]


def test_local_engines_are_free_by_default() -> None:
    usage = {"offline.scripted": {"input_tokens": 50, "output_tokens": 9}, "piper": {"tts_characters": 40},
             "deepgram": {"stt_seconds": 61.2}, "elevenlabs": {"tts_characters": 40}}  # fmt: skip
    lines = cost_lines(usage, AIRates())
    assert [(x.provider, x.cost_type, x.units, x.amount) for x in lines] == [
        ("deepgram", "ai_stt_second", 62, 6200),
        ("elevenlabs", "ai_tts_character", 40, 1200),
    ]


@pytest.mark.parametrize("ai_env", [{"initial_balance": 50}], indirect=True)
async def test_running_dry_ends_politely_and_the_flow_continues(
    ai_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = Events(ai_env.platform.events)
    async with FakeOpenAI() as fake:
        fake.push(Reply(text=["Hello, ", "thanks for calling."], input_tokens=100, output_tokens=9))
        monkeypatch.setenv("VOIPBIN_OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("VOIPBIN_OPENAI_BASE_URL", fake.base_url)
        call, af = await ai_env.run(flow(), within=30)
    assert af.variables["after_ai"] == "ran" and call.hangup_reason == "normal"
    assert events.messages("assistant") == [GREETING, "I'm sorry, this service is out of credit. Goodbye."]
    (terminated,) = events.of("aicall_status_terminated")
    assert terminated["metadata"]["end_reason"] == "insufficient_balance"
    events.close()
