"""The composition root's state: one object handed to every layer that needs shared services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voipbin.config import PlatformSecrets, Settings
from voipbin.events.bus import EventBus
from voipbin.security import Encryptor
from voipbin.store.db import Database

if TYPE_CHECKING:
    from voipbin.calls.manager import CallManager
    from voipbin.events.webhooks import WebhookDispatcher
    from voipbin.flow.engine import FlowEngine
    from voipbin.transcribe.service import TranscribeService
    from voipbin.transcribe.summary import SummaryService


@dataclass
class Platform:
    settings: Settings
    secrets: PlatformSecrets
    db: Database
    encryptor: Encryptor
    events: EventBus = field(default_factory=EventBus)
    calls: CallManager | None = None
    flows: FlowEngine | None = None
    webhooks: WebhookDispatcher | None = None
    transcribes: TranscribeService | None = None
    summaries: SummaryService | None = None
