"""voipbin media plane: plain RTP with G.711, RFC 4733 DTMF, a 20 ms playout clock, taps, recording.

Why hand-written: aiortc's RTP stack is tied to WebRTC (DTLS-SRTP, ICE, its own codecs and
timing); phone calls need plain RTP/AVP with PCMU/PCMA, symmetric RTP and RFC 4733, at hundreds of
sessions per process. This core is small, sans-I/O where it can be (``rtp``, ``rtcp``, ``dtmf``,
``jitter``, ``g711``, ``stream`` are pure), with one thin asyncio layer (``session``) on the media
engine's own thread (``engine``).

Modules, one concern each (shape borrowed from aiortc: dataclasses with parse/serialize pairs):
``rtp`` packets · ``rtcp`` SR/RR/SDES/BYE · ``g711`` codecs (and batched encoding) · ``resample``
soxr wrappers · ``dtmf`` telephone-events · ``jitter`` jitter buffer · ``ports`` port allocator ·
``stats`` · ``taps`` non-blocking frame subscriptions · ``stream`` the sans-I/O RTP stream ·
``playout`` the bounded playout queue · ``engine`` the media thread, its loop and the one 20 ms
clock · ``session`` RtpSession, the socket/clock shell · ``recorder`` WAV recording (writer thread) ·
``bridge`` session-to-session media · ``wav`` WAV sources · ``mediasession`` the facade used by calls ·
``rtpsock`` a session's sockets (drained by the tick, or read at arrival) · ``release`` inbound
audio for listeners in arrival order.
"""

from voipbin.media.bridge import Bridge, bridge
from voipbin.media.dtmf import DtmfDigit
from voipbin.media.errors import MediaError, MediaParseError, PortsExhaustedError
from voipbin.media.mediasession import MediaSession
from voipbin.media.ports import PortAllocator
from voipbin.media.recorder import RecordingInfo
from voipbin.media.session import RtpSession
from voipbin.media.stats import RtpStats
from voipbin.media.taps import Frame, Tap

__all__ = [
    "Bridge",
    "DtmfDigit",
    "Frame",
    "MediaError",
    "MediaParseError",
    "MediaSession",
    "PortAllocator",
    "PortsExhaustedError",
    "RecordingInfo",
    "RtpSession",
    "RtpStats",
    "Tap",
    "bridge",
]
