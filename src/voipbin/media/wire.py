"""The control process ↔ media worker channel: length-prefixed batches of pickled tuples.

Both ends hold one :class:`Channel` over a private ``socketpair`` (the worker is our own child, so
pickle's trust model holds). Messages are small tuples; everything one side says within one pass
of its event loop leaves in ONE batch (``send`` queues, a ``call_soon`` flush writes), so a media
tick that releases frames for 60 listeners costs one ``write(2)``, not 60. multiprocessing's
``Connection`` would do the framing but is blocking and unbatched; asyncio streams already give
us the buffering and backpressure, so this is the 40 lines between them.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("<I")
MAX_BATCH = 64 * 1024 * 1024  # a corrupt length never makes us allocate more than this

Message = tuple[Any, ...]


class ChannelClosed(ConnectionError):
    pass


class Channel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._out: list[Message] = []
        self._flush_pending = False
        self.closed = False

    def send(self, msg: Message) -> None:
        """Queue ``msg``; it leaves with everything else said in this loop pass."""
        if self.closed:
            raise ChannelClosed("media channel closed")
        self._out.append(msg)
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        out, self._out = self._out, []
        if not out or self.closed:
            return
        data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.writer.write(_HEADER.pack(len(data)) + data)
        except (ConnectionError, RuntimeError):  # the other side is gone; the reader sees EOF
            self.closed = True

    async def serve(self, handle: Callable[[Message], None]) -> None:
        """Read batches until EOF, handing each message to ``handle`` in order."""
        read = self.reader.readexactly
        try:
            while True:
                (size,) = _HEADER.unpack(await read(_HEADER.size))
                if size > MAX_BATCH:
                    raise ChannelClosed(f"media channel: batch of {size} bytes")
                for msg in pickle.loads(await read(size)):
                    handle(msg)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed = True

    async def drain(self) -> None:
        self.flush()
        if not self.closed:
            await self.writer.drain()

    def close(self) -> None:
        self.flush()
        self.closed = True
        self.writer.close()
