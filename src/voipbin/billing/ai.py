"""Charging AI conversations: itemized usage lines per engine when an aicall ends.

One ledger line per (engine, kind): LLM input tokens, LLM output tokens, STT audio seconds, TTS
characters, each ``billable_units × rate_credit_per_unit`` (integer micros per unit, from settings:
``VOIPBIN_AI_RATE_*``), ``reference_type`` ``aicall`` and ``provider`` naming the engine. Local engines
(this machine's own CPU) are free unless ``VOIPBIN_AI_CHARGE_LOCAL`` is set.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.billing.ledger import account_for, apply
from voipbin.store.tables import Billing

LOCAL_PROVIDERS = frozenset({"offline", "llama", "ollama", "piper", "whisper", "espeak", "silero"})
# usage key -> ledger cost_type
KINDS = {
    "input_tokens": "ai_llm_input_token",
    "output_tokens": "ai_llm_output_token",
    "stt_seconds": "ai_stt_second",
    "tts_characters": "ai_tts_character",
}


@dataclass(frozen=True)
class AIRates:
    llm_input_token: int = 1
    llm_output_token: int = 4
    stt_second: int = 100
    tts_character: int = 30
    charge_local: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> AIRates:
        return cls(
            settings.ai_rate_llm_input_token,
            settings.ai_rate_llm_output_token,
            settings.ai_rate_stt_second,
            settings.ai_rate_tts_character,
            settings.ai_charge_local,
        )

    def rate(self, usage_key: str) -> int:
        return {
            "input_tokens": self.llm_input_token,
            "output_tokens": self.llm_output_token,
            "stt_seconds": self.stt_second,
            "tts_characters": self.tts_character,
        }[usage_key]


@dataclass(frozen=True)
class CostLine:
    provider: str  # engine: "openai.gpt-4o-mini", "elevenlabs", "deepgram"
    cost_type: str
    units: int
    rate: int

    @property
    def amount(self) -> int:
        return self.units * self.rate


def is_local(engine: str) -> bool:
    return engine.split(".", 1)[0] in LOCAL_PROVIDERS


def is_charged(engine: str, *, charge_local: bool) -> bool:
    """The one billing rule: cloud engines cost credit; local ones only with VOIPBIN_AI_CHARGE_LOCAL."""
    return charge_local or not is_local(engine)


def cost_lines(usage_by_engine: Mapping[str, Mapping[str, Any]], rates: AIRates) -> list[CostLine]:
    """The lines an aicall's usage (``metadata.usage_by_engine``) costs; STT seconds round up."""
    lines: list[CostLine] = []
    for engine in sorted(usage_by_engine):
        if not is_charged(engine, charge_local=rates.charge_local):
            continue
        usage = usage_by_engine[engine]
        for key, cost_type in KINDS.items():
            value = usage.get(key) or 0
            units = math.ceil(value) if key == "stt_seconds" else int(value)
            if units > 0:
                lines.append(CostLine(engine, cost_type, units, rates.rate(key)))
    return lines


def total(lines: list[CostLine]) -> int:
    return sum(line.amount for line in lines)


async def charge_aicall(
    session: AsyncSession,
    customer_id: uuid.UUID,
    aicall_id: uuid.UUID,
    usage_by_engine: Mapping[str, Mapping[str, Any]],
    rates: AIRates,
) -> list[Billing]:
    """Write the aicall's usage lines and take them from the balance; the caller commits."""
    lines = cost_lines(usage_by_engine, rates)
    if not lines:
        return []
    try:
        account = await account_for(session, customer_id, lock=True)
    except LookupError:
        return []
    out = []
    for line in lines:
        out.append(
            await apply(
                session,
                account,
                amount_credit=-line.amount,
                transaction_type="usage",
                reference_type="aicall",
                reference_id=aicall_id,
                cost_type=line.cost_type,
                usage_duration=line.units if line.cost_type == "ai_stt_second" else 0,
                billable_units=line.units,
                rate_credit_per_unit=line.rate,
                provider=line.provider,
                idempotency_key=f"aicall:{aicall_id}:{line.cost_type}:{line.provider}"[:128],
            )
        )
    return out


async def balance_covers(session: AsyncSession, customer_id: uuid.UUID, amount: int) -> bool:
    """Whether the account can pay ``amount`` more (unlimited plans and token balances always can)."""
    try:
        account = await account_for(session, customer_id)
    except LookupError:
        return True  # no account: nothing to charge (platform-internal customers)
    if account.plan_type == "unlimited":
        return True
    return account.balance_credit - amount >= 0
