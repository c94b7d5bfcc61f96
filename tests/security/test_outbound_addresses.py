"""Pure unit tests of the SSRF guard's address classification and allow-list (no traffic at all)."""

from __future__ import annotations

import ipaddress

import pytest

from voipbin.security.outbound import (
    OutboundBlocked,
    OutboundPolicy,
    address_class,
    check_url,
    parse_ip,
)

STRICT = OutboundPolicy()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata service
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:10.1.2.3", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "non-public"),  # shared address space (CGNAT)
        ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 wrapping 169.254.169.254
    ],
)
def test_forbidden_classes(address: str, expected: str) -> None:
    assert address_class(ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize("address", ["240.0.0.1", "255.255.255.255", "192.0.2.1", "2001:db8::1"])
def test_reserved_and_documentation_ranges_are_refused(address: str) -> None:
    assert address_class(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert address_class(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "spelling", ["127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "0x7f000001", "127.0.1"]
)
def test_odd_ipv4_spellings_parse_to_loopback(spelling: str) -> None:
    parsed = parse_ip(spelling)
    assert parsed is not None and parsed.is_loopback


def test_names_are_not_addresses() -> None:
    assert parse_ip("example.com") is None
    assert parse_ip("0x7f.example") is None
    assert parse_ip("[::1]") == ipaddress.ip_address("::1")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/x",
        "http://[::ffff:192.168.0.1]/",
        "http://224.0.0.1/",
        "http://3232235777/",  # 192.168.1.1 as one number
        "http://0xa9.0xfe.0xa9.0xfe/",  # 169.254.169.254 in hex
        "http://metadata.localhost/",
    ],
)
def test_save_time_check_refuses_other_ranges_without_dns(url: str) -> None:
    with pytest.raises(OutboundBlocked):
        check_url(STRICT, url)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)", "http://"],
)
def test_save_time_check_refuses_other_schemes_and_missing_hosts(url: str) -> None:
    with pytest.raises(OutboundBlocked):
        check_url(STRICT, url)


def test_public_urls_pass_the_save_time_check() -> None:
    assert check_url(STRICT, "https://hooks.example.com/x").port == 443
    assert check_url(STRICT, "http://8.8.8.8:8080/").port == 8080


def test_allow_list_cidrs_and_hosts() -> None:
    policy = OutboundPolicy.parse(" 10.20.0.0/16, fd00::/8 ,169.254.169.254, media.internal, .corp.example ")
    assert policy.address_refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.address_refusal(ipaddress.ip_address("::ffff:10.20.3.4")) is None  # mapped form too
    assert policy.address_refusal(ipaddress.ip_address("10.21.0.1")) == "private"
    assert policy.address_refusal(ipaddress.ip_address("fd00::5")) is None
    assert policy.address_refusal(ipaddress.ip_address("169.254.169.254")) is None
    assert policy.address_refusal(ipaddress.ip_address("169.254.169.253")) == "link-local"
    assert policy.host_allowed("MEDIA.internal.") and policy.host_allowed("a.b.corp.example")
    assert not policy.host_allowed("corp.example.evil") and not policy.host_allowed("evilmedia.internal")
    check_url(policy, "http://media.internal/x")  # an allowed name passes whatever it resolves to
    check_url(policy, "http://10.20.9.9/x")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "http://x", "a:b", "/"])
def test_allow_list_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="VOIPBIN_OUTBOUND_ALLOW"):
        OutboundPolicy.parse(bad)
