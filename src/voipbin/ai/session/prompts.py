"""The system prompt every AI conversation on a call starts with.

The platform part tells the model what it cannot know by itself: its words are spoken on a phone
line, so long answers, lists and markup hurt. The customer's ``init_prompt`` follows, then the AI's
``parameter`` object (as VoIPBIN does: an extra system message holding its JSON).
"""

from __future__ import annotations

import json

from voipbin.ai.llm.base import Message

from .config import SessionConfig

PLATFORM_PROMPT = (
    "You are a voice assistant talking with a caller on a phone call. Everything you write is spoken "
    "aloud by a text-to-speech voice, so answer briefly: one to three short sentences, plain spoken "
    "language, no lists, markdown, emojis or links. Speech recognition can mishear the caller; if a "
    "request is unclear, ask a short question."
)


def system_messages(cfg: SessionConfig) -> list[Message]:
    text = PLATFORM_PROMPT
    if cfg.language:
        text += f" Speak in the caller's language ({cfg.language}) unless the caller switches."
    messages = [Message.system(text)]
    if cfg.init_prompt.strip():
        messages.append(Message.system(cfg.init_prompt.strip()))
    if cfg.parameter:
        messages.append(Message.system(json.dumps(dict(cfg.parameter), ensure_ascii=False)))
    return messages
