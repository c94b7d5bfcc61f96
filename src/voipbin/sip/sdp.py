"""SDP (RFC 4566) parsing/building and RFC 3264 offer/answer for one audio stream.

We only speak G.711 (PCMU=0, PCMA=8) plus RFC 4733 telephone-event, so the negotiation is small and
explicit: pick the first codec of the offer that we support, keep the offerer's telephone-event
payload type, and mirror the direction. ``parse_sdp`` raises only :class:`SdpParseError`.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

from .errors import SdpNegotiationError, SdpParseError

STATIC_PT = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
CODEC_PT = {"PCMU": 0, "PCMA": 8}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None  # address from a media-level c=
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attr(self, name: str) -> list[str | None]:
        return [v for n, v in self.attributes if n == name]

    @property
    def direction(self) -> str | None:
        for n, _ in self.attributes:
            if n in DIRECTIONS:
                return n
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """payload type -> (encoding name upper-case, clock rate)."""
        out: dict[int, tuple[str, int]] = {}
        for v in self.attr("rtpmap"):
            if not v:
                continue
            pt, _, enc = v.partition(" ")
            name, _, rest = enc.strip().partition("/")
            rate = rest.partition("/")[0]
            if pt.isdigit() and rate.isdigit() and name:
                out[int(pt)] = (name.upper(), int(rate))
        return out


@dataclass
class SessionDescription:
    origin: str = "- 0 0 IN IP4 127.0.0.1"
    session_name: str = "-"
    connection: str | None = None  # session-level c= address
    media: list[MediaDescription] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # lines we keep but do not interpret


def parse_sdp(data: bytes | str) -> SessionDescription:
    try:
        return _parse(data)
    except SdpParseError:
        raise
    except Exception as exc:  # nothing but the typed error escapes
        raise SdpParseError(f"unparseable SDP: {type(exc).__name__}") from None


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpParseError(f"bad c= line {value[:60]!r}")
    address = parts[2].split("/")[0]
    if parts[1] == "IP6" and address.startswith("[") and address.endswith("]"):
        address = address[1:-1]  # not RFC 4566, but SIPp and some phones bracket it: same address
    return address


def _parse(data: bytes | str) -> SessionDescription:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    sdp = SessionDescription()
    current: MediaDescription | None = None
    seen_v = False
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpParseError(f"bad SDP line {line[:60]!r}")
        kind, value = line[0], line[2:]
        if kind == "v":
            if value.strip() != "0":
                raise SdpParseError("unsupported SDP version")
            seen_v = True
        elif not seen_v:
            raise SdpParseError("SDP must start with v=0")
        elif kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpParseError(f"bad m= line {value[:60]!r}")
            port_s = parts[1].split("/")[0]
            if not port_s.isdigit() or int(port_s) > 65535:
                raise SdpParseError(f"bad m= port {value[:60]!r}")
            current = MediaDescription(parts[0], int(port_s), parts[2], parts[3:])
            sdp.media.append(current)
        elif kind == "c":
            addr = _parse_connection(value)
            if current is None:
                sdp.connection = addr
            else:
                current.connection = addr
        elif kind == "a":
            name, colon, val = value.partition(":")
            target = current.attributes if current is not None else sdp.attributes
            target.append((name, val if colon else None))
        elif kind == "o" and current is None:
            sdp.origin = value
        elif kind == "s" and current is None:
            sdp.session_name = value
        else:
            sdp.other.append((kind, value))
    if not seen_v:
        raise SdpParseError("empty SDP")
    return sdp


@dataclass
class NegotiatedMedia:
    """Result of offer/answer for the audio stream, from our point of view."""

    codec: str  # "PCMU" / "PCMA"
    payload_type: int
    clock_rate: int
    remote_addr: str
    remote_port: int
    ptime: int
    dtmf_payload_type: int | None
    direction: str  # our direction: sendrecv / sendonly / recvonly / inactive


def build_sdp(
    address: str,
    port: int,
    *,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    dtmf_payload_type: int | None = 101,
    ptime: int = 20,
    direction: str = "sendrecv",
    session_id: int | None = None,
    version: int = 1,
    payload_types: dict[str, int] | None = None,
) -> bytes:
    sid = session_id if session_id is not None else secrets.randbelow(2**31)
    ip = "IP6" if ":" in address else "IP4"
    pts = payload_types or CODEC_PT
    fmts = [str(pts[c]) for c in codecs]
    if dtmf_payload_type is not None:
        fmts.append(str(dtmf_payload_type))
    lines = [
        "v=0",
        f"o=voipbin {sid} {version} IN {ip} {address}",
        "s=voipbin",
        f"c=IN {ip} {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(fmts)}",
    ]
    for c in codecs:
        lines.append(f"a=rtpmap:{pts[c]} {c}/8000")
    if dtmf_payload_type is not None:
        lines.append(f"a=rtpmap:{dtmf_payload_type} telephone-event/8000")
        lines.append(f"a=fmtp:{dtmf_payload_type} 0-16")
    lines.append(f"a=ptime:{ptime}")
    lines.append(f"a={direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _audio(sdp: SessionDescription) -> MediaDescription:
    for m in sdp.media:
        if m.media == "audio":
            return m
    raise SdpNegotiationError("no audio stream", warn_code=304)


def _codecs(m: MediaDescription) -> list[tuple[int, str, int]]:
    rtpmap = m.rtpmap()
    out = []
    for f in m.formats:
        if not f.isdigit():
            continue
        pt = int(f)
        name, rate = rtpmap.get(pt) or STATIC_PT.get(pt, ("", 0))
        out.append((pt, name, rate))
    return out


def _ptime(m: MediaDescription, default: int = 20) -> int:
    for v in m.attr("ptime"):
        if v and v.strip().isdigit() and 10 <= int(v) <= 200:
            return int(v)
    return default


def _dtmf_pt(m: MediaDescription) -> int | None:
    for pt, name, rate in _codecs(m):
        if name == "TELEPHONE-EVENT" and rate == 8000:
            return pt
    return None


def answer_offer(
    offer: bytes | SessionDescription,
    address: str,
    port: int,
    *,
    supported: tuple[str, ...] = ("PCMU", "PCMA"),
    dtmf: bool = True,
) -> tuple[bytes, NegotiatedMedia]:
    """Build our answer to a remote offer. Raises SdpParseError / SdpNegotiationError (-> 488)."""
    sdp = offer if isinstance(offer, SessionDescription) else parse_sdp(offer)
    m, chosen, remote_addr = _servable(sdp, supported, (4, 6))
    dtmf_pt = _dtmf_pt(m) if dtmf else None
    direction = _REVERSE[m.direction or _session_direction(sdp)]
    ptime = _ptime(m)
    body = build_sdp(
        address,
        port,
        codecs=(chosen[1],),
        dtmf_payload_type=dtmf_pt,
        ptime=ptime,
        direction=direction,
        payload_types={chosen[1]: chosen[0]},
    )
    return body, NegotiatedMedia(chosen[1], chosen[0], 8000, remote_addr, m.port, ptime, dtmf_pt, direction)


def _servable(
    sdp: SessionDescription, supported: tuple[str, ...], families: tuple[int, ...]
) -> tuple[MediaDescription, tuple[int, str, int], str]:
    m = _audio(sdp)
    if m.port == 0:
        raise SdpNegotiationError("audio stream disabled in offer", warn_code=304)
    if m.proto.upper() not in ("RTP/AVP", "RTP/AVPF"):  # SRTP (RTP/SAVP), WebRTC: not served
        raise SdpNegotiationError(f"unsupported transport {m.proto[:30]}", warn_code=302)
    chosen: tuple[int, str, int] | None = None
    for pt, name, rate in _codecs(m):
        if name in supported and rate == 8000:
            chosen = (pt, name, rate)
            break
    if chosen is None:
        raise SdpNegotiationError("no common codec (we speak PCMU and PCMA)", warn_code=305)
    remote_addr = m.connection or sdp.connection
    if not remote_addr:
        raise SdpNegotiationError("no connection address", warn_code=301)
    try:
        version = ipaddress.ip_address(remote_addr).version
    except ValueError:  # a host name: we do not resolve DNS on the media path
        why = f"connection address {remote_addr[:60]!r} is not an IP literal"
        raise SdpNegotiationError(why, warn_code=301) from None
    if version not in families:
        raise SdpNegotiationError(f"IPv{version} media is not available here", warn_code=301)
    return m, chosen, remote_addr


def check_offer(
    offer: bytes | SessionDescription,
    *,
    supported: tuple[str, ...] = ("PCMU", "PCMA"),
    families: tuple[int, ...] = (4, 6),
) -> None:
    """Raise SdpParseError / SdpNegotiationError (its ``warn_code`` for the 488's Warning header)
    unless we can serve the offer: an audio stream over plain RTP/AVP with a codec we speak and an
    IP-literal address of a family we have. Called before ringing, so a call we could not carry is
    refused (488) and never answered with a 200 followed by a dead call."""
    sdp = offer if isinstance(offer, SessionDescription) else parse_sdp(offer)
    _servable(sdp, supported, families)


def offer_address(offer: bytes | SessionDescription) -> str | None:
    """The offer's audio connection address (media-level c= first), or None."""
    sdp = offer if isinstance(offer, SessionDescription) else parse_sdp(offer)
    try:
        m = _audio(sdp)
    except SdpNegotiationError:
        return None
    return m.connection or sdp.connection


def warning_header(error: SdpNegotiationError, agent: str) -> tuple[str, str]:
    """RFC 3261 ``Warning: <code> <agent> "<text>"`` for a 488 (quotes and backslashes removed)."""
    text = str(error).replace("\\", "").replace('"', "'")
    return ("Warning", f'{error.warn_code} {agent} "{text}"')


def _session_direction(sdp: SessionDescription) -> str:
    for n, _ in sdp.attributes:
        if n in DIRECTIONS:
            return n
    return "sendrecv"


def parse_answer(answer: bytes | SessionDescription, offer: bytes | None = None) -> NegotiatedMedia:
    """Interpret the remote answer to our offer: the first codec listed is the one to send."""
    sdp = answer if isinstance(answer, SessionDescription) else parse_sdp(answer)
    m = _audio(sdp)
    offered: set[str] | None = None
    if offer is not None:
        offered = {name for _, name, _ in _codecs(_audio(parse_sdp(offer)))}
    for pt, name, rate in _codecs(m):
        if name in CODEC_PT and rate == 8000 and (offered is None or name in offered):
            remote_addr = m.connection or sdp.connection
            if not remote_addr:
                raise SdpNegotiationError("no connection address")
            direction = _REVERSE[m.direction or _session_direction(sdp)]
            if m.port == 0:
                direction = "inactive"
            return NegotiatedMedia(name, pt, rate, remote_addr, m.port, _ptime(m), _dtmf_pt(m), direction)
    raise SdpNegotiationError("answer has no codec we offered")
