"""Typed errors of the media plane.

Every parser in this package raises :class:`MediaParseError` (and nothing else) on malformed input,
so the socket layer can drop a bad datagram with one ``except`` and keep running.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class for media-plane errors."""


class MediaParseError(MediaError, ValueError):
    """A packet or file could not be parsed."""


class PortsExhaustedError(MediaError):
    """No free RTP/RTCP port pair is left in the configured range."""
