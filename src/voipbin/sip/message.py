"""SIP message model, parser and serializer (RFC 3261 §7, §20).

``parse_message(data)`` never raises anything but :class:`SipParseError`: bytes come from the network
and a crafted packet must not take the event loop down. It understands folded header lines, compact
header names, case-insensitive names, comma-joined multi-value headers and Content-Length framing.
Typed accessors (``via``, ``cseq``, ``from_``, ``to``, ``call_id``) are validated at parse time for
requests and responses, so code above this layer can use them without re-checking.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import SipParseError
from .headers import MULTI_VALUE, CSeq, Via, _canon_cache, canonical_name, split_values
from .uri import NameAddr, SipUri

_T = TypeVar("_T")
MAX_MESSAGE = 65535
_BAD_NAME = re.compile(r'[ \t()<>@,;\\"/\[\]?={}]')  # separators not allowed in a token
MAGIC_COOKIE = "z9hG4bK"
_HEADER_INFO: dict[str, tuple[str, bool]] = {}  # raw header name -> (canonical name, multi-value)

REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


class Headers:
    """Ordered multi-map of headers keyed by canonical name; one entry per value."""

    __slots__ = ("_items", "version")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]
        self.version = 0  # bumped on every change: lets messages memoise parsed header values

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        name = _canon_cache.get(name) or canonical_name(name)
        for n, v in self._items:
            if n == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = _canon_cache.get(name) or canonical_name(name)
        return [v for n, v in self._items if n == name]

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        entry = (_canon_cache.get(name) or canonical_name(name), value)
        self.version += 1
        if first:
            self._items.insert(0, entry)
        else:
            self._items.append(entry)

    def set(self, name: str, value: str | None) -> None:
        """Replace all values of ``name`` (in place of the first one); ``None`` removes."""
        name = canonical_name(name)
        out: list[tuple[str, str]] = []
        placed = value is None
        for n, v in self._items:
            if n == name:
                if not placed:
                    out.append((name, value))  # type: ignore[arg-type]
                    placed = True
                continue
            out.append((n, v))
        if not placed:
            out.append((name, value))  # type: ignore[arg-type]
        self._items = out
        self.version += 1

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of ``name`` in place (appended if absent)."""
        name = canonical_name(name)
        items = self._items
        self.version += 1
        for i, (n, _) in enumerate(items):
            if n == name:
                items[i] = (name, value)
                return
        items.append((name, value))

    def remove(self, name: str) -> None:
        self.set(name, None)

    def pop_first(self, name: str) -> str | None:
        name = canonical_name(name)
        for i, (n, v) in enumerate(self._items):
            if n == name:
                del self._items[i]
                self.version += 1
                return v
        return None

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h


@dataclass
class SipMessage:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    _typed_cache: dict[str, tuple[Headers, int, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # --- typed accessors (raise SipParseError if the header is broken) ---
    # Parsed values are memoised until the headers change: treat them as read-only (``.copy()`` them).
    def _typed(self, name: str, parser: Callable[[str], _T]) -> _T:
        headers = self.headers
        cache = self._typed_cache
        hit = cache.get(name)
        if hit is not None and hit[0] is headers and hit[1] == headers.version:
            cached: _T = hit[2]
            return cached
        value = headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name}")
        parsed = parser(value)
        cache[name] = (headers, headers.version, parsed)
        return parsed

    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if not value:
            raise SipParseError("missing Call-ID")
        return value

    @property
    def cseq(self) -> CSeq:
        return self._typed("CSeq", CSeq.parse)

    @property
    def via(self) -> Via:
        return self._typed("Via", Via.parse)

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def from_(self) -> NameAddr:
        return self._typed("From", NameAddr.parse)

    @property
    def to(self) -> NameAddr:
        return self._typed("To", NameAddr.parse)

    @property
    def contacts(self) -> list[NameAddr]:
        return [NameAddr.parse(v) for v in self.headers.get_all("Contact")]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value else None

    def _validate_common(self) -> None:
        self.call_id  # noqa: B018 - validation by parsing
        self.cseq  # noqa: B018
        self.from_  # noqa: B018
        self.to  # noqa: B018
        vias = self.headers.get_all("Via")
        if not vias:
            raise SipParseError("missing Via")
        self.via  # noqa: B018 - the top one, memoised
        for v in vias[1:]:
            Via.parse(v)

    def start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        lines = [self.start_line()]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()


@dataclass
class SipRequest(SipMessage):
    method: str = "OPTIONS"
    uri: SipUri = field(default_factory=SipUri)

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def validate(self) -> None:
        self._validate_common()
        if self.cseq.method != self.method:
            raise SipParseError("CSeq method does not match request method")


@dataclass
class SipResponse(SipMessage):
    status: int = 200
    reason: str = "OK"

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def validate(self) -> None:
        self._validate_common()


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one datagram / one framed stream message. Raises only :class:`SipParseError`."""
    try:
        msg = _parse(data)
    except SipParseError:
        raise
    except Exception as exc:  # defence in depth: nothing else may escape to the event loop
        raise SipParseError(f"unparseable message: {type(exc).__name__}") from None
    try:
        msg.validate()
    except SipParseError as exc:
        raise SipParseError(str(exc), partial=msg) from None
    except Exception as exc:
        raise SipParseError(f"invalid message: {type(exc).__name__}", partial=msg) from None
    return msg


def _parse(data: bytes) -> SipRequest | SipResponse:
    if len(data) > MAX_MESSAGE:
        raise SipParseError("message too large")
    # RFC 3261 §7.5: tolerate leading CRLFs (keep-alives).
    data = data.lstrip(b"\r\n")
    head_end = data.find(b"\r\n\r\n")
    sep = 4
    if head_end < 0:
        head_end = data.find(b"\n\n")
        sep = 2
        if head_end < 0:
            raise SipParseError("no end of headers")
    head = data[:head_end].decode("utf-8", "surrogateescape")
    body = data[head_end + sep :]
    raw_lines = head.replace("\r\n", "\n").split("\n")
    start = raw_lines[0]
    # unfold continuation lines (RFC 3261 §7.3.1)
    lines: list[str] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t"):
            if not lines:
                raise SipParseError("continuation line before first header")
            lines[-1] += " " + line.strip()
        elif line:
            lines.append(line)
    headers = Headers()
    items = headers._items
    for line in lines:
        raw, colon, value = line.partition(":")
        info = _HEADER_INFO.get(raw)
        if info is None:
            name = raw.strip()
            if not colon or not name or _BAD_NAME.search(name):
                raise SipParseError(f"bad header line {line[:60]!r}")
            canon = canonical_name(name)
            info = (canon, canon.lower() in MULTI_VALUE)
            if len(_HEADER_INFO) < 4096:  # bounded: header names come from the network
                _HEADER_INFO[raw] = info
        canon, multi = info
        value = value.strip()
        if multi:
            for v in split_values(value):
                items.append((canon, v))
        else:
            items.append((canon, value))
    msg: SipRequest | SipResponse
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit() or len(parts[1]) != 3:
            raise SipParseError(f"bad status line {start[:60]!r}")
        status = int(parts[1])
        if not 100 <= status <= 699:
            raise SipParseError(f"bad status code {status}")
        msg = SipResponse(headers=headers, status=status, reason=parts[2] if len(parts) > 2 else "")
    else:
        parts = start.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            raise SipParseError(f"bad request line {start[:60]!r}")
        method = parts[0]
        if not method or not all(c.isalnum() or c in "-.!%*_+`'~" for c in method) or not method.isascii():
            raise SipParseError(f"bad method {method[:20]!r}")
        msg = SipRequest(headers=headers, method=method, uri=SipUri.parse(parts[1]))
    clen = headers.get("Content-Length")
    if clen is not None:
        clen = clen.strip()
        if not clen.isdigit() or len(clen) > 6:
            raise SipParseError("bad Content-Length")
        n = int(clen)
        if n > len(body):
            raise SipParseError("body shorter than Content-Length")
        body = body[:n]
    msg.body = body
    return msg


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """Build a response copying Via/From/To/Call-ID/CSeq (RFC 3261 §8.2.6).

    Works on the raw header strings, so it also serves a ``partial`` message whose typed headers are
    broken (used for ``400 Bad Request``).
    """
    h = Headers()
    for v in request.headers.get_all("Via"):
        h.add("Via", v)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is None:
            continue
        if name == "To" and to_tag and status != 100:
            try:
                if request.to.tag is None:  # memoised parse of this very value
                    value = f"{value};tag={to_tag}"
            except SipParseError:
                pass
        h.add(name, value)
    if request.method == "INVITE" and 100 < status < 300:
        for rr in request.headers.get_all("Record-Route"):
            h.add("Record-Route", rr)
    for name, value in headers:
        h.add(name, value)
    if body and content_type:
        h.set("Content-Type", content_type)
    return SipResponse(headers=h, body=body, status=status, reason=reason or REASONS.get(status, ""))
