"""Header names and the structured headers the stack reads: Via, CSeq, and digest auth parameters.

Names are case-insensitive and have compact forms (``v`` = Via, ``i`` = Call-ID ...); we store every
header under one canonical spelling so lookups are a dict hit and output is conventional.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError
from .uri import Params, _split_outside_quotes, format_params, parse_params, split_host_port

COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "u": "allow-events",
    "x": "session-expires",
}

_SPECIAL = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
}

# Headers whose comma-separated values are independent entries (RFC 3261 §7.3.1).
# Auth headers are NOT in here: their parameters contain commas.
MULTI_VALUE = frozenset(
    {
        "via",
        "route",
        "record-route",
        "contact",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
    }
)

_canon_cache: dict[str, str] = {}
_VIA_RE = re.compile(r"\s*SIP\s*/\s*(\d\.\d)\s*/\s*([A-Za-z0-9]+)\s+(\S.*)\Z", re.I | re.S)


def canonical_name(name: str) -> str:
    """``v`` / ``VIA`` / ``via`` -> ``Via``; ``call-id`` -> ``Call-ID``."""
    cached = _canon_cache.get(name)
    if cached is not None:
        return cached
    low = name.strip().lower()
    low = COMPACT.get(low, low)
    canon = _SPECIAL.get(low) or "-".join(p[:1].upper() + p[1:] for p in low.split("-"))
    if len(_canon_cache) < 4096:  # bounded: header names come from the network
        _canon_cache[name] = canon
    return canon


def split_values(value: str) -> list[str]:
    """Split a multi-value header on commas outside quotes and ``<...>``."""
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    return [v.strip() for v in _split_outside_quotes(value, ",") if v.strip()]


@dataclass
class Via:
    transport: str  # UDP / TCP (upper-case)
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _VIA_RE.match(text)
        if m is None:
            raise SipParseError(f"bad Via {text[:80]!r}")
        sent_by, _, params = m.group(3).strip().partition(";")
        host, port = split_host_port(sent_by)
        return cls(m.group(2).upper(), host, port, parse_params(params), f"SIP/{m.group(1)}")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port or 5060}"


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10:
            raise SipParseError(f"bad CSeq {text[:80]!r}")
        number = int(parts[0])
        if number >= 2**31:
            raise SipParseError(f"CSeq out of range {text[:80]!r}")
        return cls(number, parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """``Digest realm="x", nonce="y", qop=auth`` -> ("digest", {...}); keys lower-cased."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if not scheme or not scheme.isalnum():
        raise SipParseError(f"bad auth header {value[:80]!r}")
    params: dict[str, str] = {}
    for item in _split_outside_quotes(rest, ","):
        item = item.strip()
        if not item:
            continue
        name, eq, val = item.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            raise SipParseError(f"bad auth parameter {item[:80]!r}")
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1].replace('\\"', '"')
        params[name] = val
    return scheme.lower(), params


def format_auth_params(scheme: str, params: dict[str, str], unquoted: frozenset[str] = frozenset()) -> str:
    items = []
    for name, val in params.items():
        items.append(f"{name}={val}" if name in unquoted else f'{name}="{val}"')
    return f"{scheme} " + ", ".join(items)


def parse_expires(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        raise SipParseError(f"bad expires {value[:40]!r}")
    return int(value)


__all__ = [
    "COMPACT",
    "MULTI_VALUE",
    "CSeq",
    "Via",
    "canonical_name",
    "format_auth_params",
    "parse_auth_params",
    "parse_expires",
    "parse_params",
    "split_values",
]
