"""SIP URIs (RFC 3261 §19.1) and name-addr values (From, To, Contact, Route, Record-Route).

Parsing is deliberately tolerant of what real phones send and strict only where an error would make
the message unusable; every failure is a :class:`SipParseError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError

Params = dict[str, str | None]
_BAD_HOST = re.compile(r'[ \t<>"@]')


def parse_params(text: str) -> Params:
    """Parse ``;a=b;c`` (leading ``;`` optional). Names are lower-cased, values kept (quotes stripped)."""
    params: Params = {}
    if not text:
        return params
    for part in _split_outside_quotes(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise SipParseError(f"empty parameter name in {text!r}")
        if eq:
            value = value.strip()
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
            params[name] = value
        else:
            params[name] = None
    return params


def format_params(params: Params) -> str:
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif _needs_quotes(value):
            out.append(f';{name}="{value}"')
        else:
            out.append(f";{name}={value}")
    return "".join(out)


def _needs_quotes(value: str) -> bool:
    return any(c in value for c in ' ,;"<>') or value == ""


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside double quotes or ``<...>``."""
    if '"' not in text and "<" not in text:
        return text.split(sep)  # fast path: nothing can hide a separator
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    angle = 0
    escape = False
    for ch in text:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if quoted and ch == "\\":
            buf.append(ch)
            escape = True
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">" and angle:
            angle -= 1
        if ch == sep and not quoted and not angle:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host, port)."""
    text = text.strip()
    if not text:
        raise SipParseError("empty host")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"bad IPv6 reference {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise SipParseError(f"bad host/port {text!r}")
        return host, _port(rest[1:])
    host, colon, port = text.partition(":")
    if not host or _BAD_HOST.search(host):
        raise SipParseError(f"bad host {text!r}")
    return host, (_port(port) if colon else None)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SipParseError(f"bad port {text!r}")
    return int(text)


@dataclass
class SipUri:
    """``sip:``/``sips:`` URI; ``tel:`` numbers are kept with ``user`` set and an empty host."""

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    password: str | None = None
    params: Params = field(default_factory=dict)
    headers: str = ""  # raw ``?h=v&...`` part without the ``?``

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips", "tel"):
            raise SipParseError(f"unsupported URI {text[:80]!r}")
        if scheme == "tel":
            number, _, params = rest.partition(";")
            if not number:
                raise SipParseError("empty tel URI")
            return cls(scheme="tel", user=number, params=parse_params(params))
        rest, _, headers = rest.partition("?")
        userinfo, at, hostpart = rest.rpartition("@")
        if not at:
            hostpart = rest
            userinfo = ""
        user: str | None = None
        password: str | None = None
        if at:
            user, pcolon, pw = userinfo.partition(":")
            password = pw if pcolon else None
            if not user:
                raise SipParseError(f"empty user in {text[:80]!r}")
        hostport, _, params = hostpart.partition(";")
        host, port = split_host_port(hostport)
        return cls(scheme, user, host.lower(), port, password, parse_params(params), headers)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        hdrs = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{hdrs}"

    @property
    def transport(self) -> str:
        return (self.params.get("transport") or ("tls" if self.scheme == "sips" else "udp")).lower()

    def aor(self) -> str:
        """Address-of-record key: ``scheme:user@host`` (no port, no params), used by the registrar."""
        if self.user is None:
            return f"{self.scheme}:{self.host}"
        return f"{self.scheme}:{self.user}@{self.host}"

    def copy(self) -> SipUri:
        return SipUri(
            self.scheme, self.user, self.host, self.port, self.password, dict(self.params), self.headers
        )


@dataclass
class NameAddr:
    """``"Display" <uri>;param=value`` — the value of From/To/Contact/Route/Record-Route.

    ``wildcard`` is set for ``Contact: *`` (unregister all).
    """

    uri: SipUri
    display_name: str | None = None
    params: Params = field(default_factory=dict)
    wildcard: bool = False

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        if text == "*":
            return cls(uri=SipUri(), wildcard=True)
        lt = _find_unquoted(text, "<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError(f"unterminated <...> in {text[:80]!r}")
            display = text[:lt].strip()
            if len(display) >= 2 and display[0] == '"' and display[-1] == '"':
                display = display[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            uri = SipUri.parse(text[lt + 1 : gt])
            rest = text[gt + 1 :].strip()
            if rest and not rest.startswith(";"):
                raise SipParseError(f"junk after name-addr {text[:80]!r}")
            return cls(uri, display or None, parse_params(rest))
        # addr-spec form: any ;params belong to the header, not to the URI (RFC 3261 §20.10).
        uri_text, _, params = text.partition(";")
        if "?" in uri_text or "," in uri_text:
            raise SipParseError(f"addr-spec with reserved characters {text[:80]!r}")
        return cls(SipUri.parse(uri_text), None, parse_params(params))

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        display = ""
        if self.display_name:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def copy(self) -> NameAddr:
        return NameAddr(self.uri.copy(), self.display_name, dict(self.params), self.wildcard)


def _find_unquoted(text: str, ch: str) -> int:
    if '"' not in text:
        return text.find(ch)  # fast path: nothing is quoted
    quoted = False
    escape = False
    for i, c in enumerate(text):
        if escape:
            escape = False
        elif quoted and c == "\\":
            escape = True
        elif c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            return i
    return -1
