"""voipbin's own SIP stack (RFC 3261 over UDP and TCP, RFC 3264 SDP, RFC 2617/7616 digest).

Why hand-written: no production-grade asyncio SIP stack exists on PyPI (the options are bindings to
C stacks with their own threads and event loops, or unmaintained toys). So, like h11 and aioquic,
this is a sans-I/O core plus a thin asyncio layer:

- ``message``/``headers``/``uri``: parser + serializer; raises only :class:`SipParseError`.
- ``sdp``: SDP parse/build and G.711 + telephone-event offer/answer.
- ``digest``: client and server digest auth (MD5, SHA-256, qop=auth, expiring stateless nonces).
- ``transaction``: the four RFC 3261 transaction state machines, fed bytes-free events and ``now``.
- ``dialog``: dialog identifiers, CSeq, route set, in-dialog request construction.
- ``invite_client`` / ``invite_server`` / ``dialog_usage`` / ``non_invite``: the user agent
  procedures as sans-I/O machines (outgoing INVITE with auth/CANCEL/forks, incoming INVITE with
  2xx-until-ACK and CANCEL, in-dialog BYE/INFO/re-INVITE with glare, REGISTER/OPTIONS/MESSAGE client).
- ``user_agent``: the sans-I/O core routing messages to those machines, one deadline heap for all.
- ``transport``: asyncio UDP + TCP (Content-Length framing) on one port.
- ``endpoint``: the asyncio shell (transports, DNS, one timer) with the awaitable API (calls).
- ``registrar`` / ``registration``: server-side REGISTER handling with bindings, and the REGISTER client.

The sans-I/O parts never touch sockets or clocks, so they are fuzzed and tested with a fake clock;
the asyncio parts are tested against SIPp on loopback.
"""

from .dialog import Dialog
from .digest import (
    AuthCheck,
    AuthResult,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    authenticate_request,
    build_authorization,
)
from .endpoint import Call, IncomingInvite, IncomingRequest, InviteResult, OutgoingInvite, SipEndpoint
from .errors import SdpNegotiationError, SdpParseError, SipError, SipParseError, SipTransportError
from .message import SipRequest, SipResponse, make_response, parse_message
from .registrar import Binding, Bindings, BindingStore, RegisterOutcome, Registrar
from .registration import Registration, RegistrationError
from .sdp import NegotiatedMedia, answer_offer, build_sdp, parse_answer, parse_sdp
from .transaction import TimerConfig
from .ua_base import Source
from .uri import NameAddr, SipUri

__all__ = [
    "AuthCheck",
    "AuthResult",
    "Binding",
    "BindingStore",
    "Bindings",
    "Call",
    "Dialog",
    "DigestAuthenticator",
    "DigestChallenge",
    "DigestCredentials",
    "IncomingInvite",
    "IncomingRequest",
    "InviteResult",
    "NameAddr",
    "NegotiatedMedia",
    "OutgoingInvite",
    "RegisterOutcome",
    "Registrar",
    "Registration",
    "RegistrationError",
    "SdpNegotiationError",
    "SdpParseError",
    "SipEndpoint",
    "SipError",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipTransportError",
    "SipUri",
    "Source",
    "TimerConfig",
    "answer_offer",
    "authenticate_request",
    "build_authorization",
    "build_sdp",
    "make_response",
    "parse_answer",
    "parse_message",
    "parse_sdp",
]
