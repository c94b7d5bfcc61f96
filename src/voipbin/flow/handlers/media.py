"""Call media actions: answer, play, sleep, hangup.

``play`` accepts local file paths, ``file://`` URLs and ``http(s)://`` URLs. Remote files are
downloaded with httpx into a temporary WAV (size-capped) and deleted after playing. Local files must lie
under one of the allowed media directories (``VOIPBIN_FLOW_MEDIA_DIRS``, ``os.pathsep``-separated;
default ``<data_dir>/media``), because flow authors are API users and must not read the server's files.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import httpx

from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, End, Outcome
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.models.action_options.media import HangupOption, PlayOption, SleepOption

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


@REGISTRY.handler("answer")
async def answer(ctx: ActionContext) -> Outcome:
    await ctx.require_call().answer()
    return CONTINUE


# sleep is a call action in VoIPBIN's media gate; it is harmless and useful without a call too.
@REGISTRY.handler("sleep", needs_call=False)
async def sleep(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, SleepOption)
    await asyncio.sleep(int(ctx.option.duration) / 1000)
    return CONTINUE


@REGISTRY.handler("hangup")
async def hangup(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, HangupOption)
    call = ctx.require_call()
    reason = str(ctx.option.reason or "normal")
    ref = ctx.option.reference_id
    if isinstance(ref, str) and ref:
        raise ActionFailed(f"hangup: reference_id {ref!r} is not a call id")
    if isinstance(ref, uuid.UUID):
        # Copy another call's hangup reason (VoIPBIN's relay), if that call is ours and has one.
        other = await ctx.deps.calls.get(ref)
        if other is not None and other.customer_id == ctx.customer_id and other.hangup_reason:
            reason = other.hangup_reason
    await call.hangup(reason)
    return End()


def media_dirs(ctx: ActionContext) -> list[Path]:
    raw = ctx.deps.settings.flow_media_dirs
    if raw:
        return [Path(p).resolve() for p in raw.split(os.pathsep) if p]
    return [(Path(ctx.deps.settings.data_dir) / "media").resolve()]


def _check_wav_header(head: bytes, what: str) -> None:
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ActionFailed(f"play: {what} is not a WAV file")


def _local_path(ctx: ActionContext, text: str, shown: str) -> Path:
    path = Path(text).resolve()
    roots = media_dirs(ctx)
    if not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise ActionFailed(f"play: {shown} is outside the allowed media directories ({allowed})")
    if not path.is_file():
        raise ActionFailed(f"play: {shown} does not exist")
    with path.open("rb") as f:
        _check_wav_header(f.read(12), shown)
    return path


async def _download(ctx: ActionContext, url: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="voipbin-play-", suffix=".wav")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async with ctx.services.http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise ActionFailed(f"play: GET {url} answered HTTP {response.status_code}")
                size = 0
                head = b""
                async for chunk in response.aiter_bytes():
                    if len(head) < 12:
                        head += chunk[: 12 - len(head)]
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise ActionFailed(f"play: {url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
        _check_wav_header(head, url)
        return path
    except httpx.HTTPError as exc:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise ActionFailed(f"play: cannot fetch {url}: {exc!r}") from None
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise


async def resolve_media(ctx: ActionContext, url: str) -> tuple[Path, bool]:
    """The WAV file to play for ``url`` and whether it is a temporary download to delete."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        return await _download(ctx, url), True
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ActionFailed(f"play: {url} names a remote host; use http(s)://")
        return _local_path(ctx, urllib.request.url2pathname(parsed.path), url), False
    if parsed.scheme == "" and url.strip():
        return _local_path(ctx, url, url), False
    raise ActionFailed(f"play: unsupported URL {url!r} (use a file path, file:// or http(s)://)")


@REGISTRY.handler("play")
async def play(ctx: ActionContext) -> Outcome:
    assert isinstance(ctx.option, PlayOption)
    call = ctx.require_call()
    for url in ctx.option.stream_urls:
        path, temporary = await resolve_media(ctx, url)
        try:
            await call.play_wav(path)
        finally:
            if temporary:
                await asyncio.to_thread(path.unlink, missing_ok=True)
    return CONTINUE
