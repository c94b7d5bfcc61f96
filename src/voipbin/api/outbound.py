"""Save-time SSRF checks of URL fields the API stores (webhook URIs): a 400 naming the field."""

from __future__ import annotations

from voipbin.api.errors import bad_request
from voipbin.security.outbound import OutboundBlocked, OutboundPolicy, check_url_resolving


async def check_saved_url(policy: OutboundPolicy, url: str | None, field: str) -> None:
    """``url`` must be one the platform may contact (literal addresses, localhost and a DNS look-up);
    an empty value clears the setting and passes."""
    if not url:
        return
    try:
        await check_url_resolving(policy, url)
    except OutboundBlocked as exc:
        raise bad_request(f"{field}: {exc}", field=field) from None
