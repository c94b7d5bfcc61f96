"""Typed errors of the SIP stack.

Every parser in this package raises only :class:`SipParseError` (or its SDP subclass) on bad input, so
callers can catch one type and answer 400 / drop the packet without a blanket ``except Exception``.
"""

from __future__ import annotations

from typing import Any


class SipError(Exception):
    """Base class of every error raised on purpose by ``voipbin.sip``."""


class SipParseError(SipError):
    """Input bytes/text are not valid SIP (or SDP).

    ``partial`` may hold a message whose framing and headers parsed but whose mandatory headers are
    broken; the endpoint uses it to answer ``400 Bad Request`` instead of silently dropping.
    """

    def __init__(self, message: str, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class SdpParseError(SipParseError):
    """The SDP body is malformed."""


class SdpNegotiationError(SipError):
    """Offer/answer found no common codec or usable address (answer 488 Not Acceptable Here).

    ``warn_code`` is the RFC 3261 (20.43) warning for the 488's ``Warning`` header: 301 incompatible
    network address formats, 304 media type not available, 305 incompatible media format.
    """

    def __init__(self, message: str, warn_code: int = 305) -> None:
        super().__init__(message)
        self.warn_code = warn_code


class SipTransportError(SipError):
    """A message could not be sent (no route, connection refused...)."""
