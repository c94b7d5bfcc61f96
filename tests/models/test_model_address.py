"""Address: normalisation, omitempty serialisation and dial-target validation."""

import pytest

from voipbin.models.address import (
    ADDRESS_TYPES,
    TEL_RE,
    ActionValidationError,
    Address,
    AddressType,
    validate_dial_address,
)

AGENT = "6f7a8b9c-0d1e-2345-f012-345678901234"


def test_types() -> None:
    assert {
        "", "tel", "sip", "extension", "agent", "conference", "email", "line",
        "ai", "ai_team", "webchat", "web_session", "whatsapp",
    } == ADDRESS_TYPES  # fmt: skip
    assert Address(type=AddressType.TEL, target="+15551234567").type == "tel"
    with pytest.raises(ValueError, match="unknown address type 'fax'"):
        Address(type="fax", target="1")


@pytest.mark.parametrize(
    ("type_", "target", "normalized"),
    [
        ("tel", "+1 (555) 123-4567", "+15551234567"),
        ("tel", " +1.555.123.4567 ", "+15551234567"),
        ("tel", "15551234567", "15551234567"),
        ("tel", "+1555abc1234567", "+15551234567"),
        ("tel", "${voipbin.call.source.target}", "${voipbin.call.source.target}"),
        ("sip", "sip:Alice@Example.COM", "Alice@example.com"),
        ("sip", "SIPS:bob@PBX.example.org:5061", "bob@pbx.example.org:5061"),
        ("sip", "carol@example.com", "carol@example.com"),
        ("email", "  Ops@Example.COM ", "ops@example.com"),
        ("extension", " 2001 ", "2001"),
        ("conference", AGENT, AGENT),
    ],
)
def test_normalization(type_: str, target: str, normalized: str) -> None:
    address = Address(type=type_, target=target)
    assert address.target == normalized
    assert address.normalize() == address  # idempotent
    assert Address.model_construct(type=type_, target=target).normalize().target == normalized


def test_lenient_input_and_to_api_omits_empty_fields() -> None:
    address = Address.model_validate(
        {"type": "tel", "target": 15551234567, "name": None, "detail": "", "extra": "ignored"}
    )
    assert address.target == "15551234567"
    assert address.to_api() == {"type": "tel", "target": "15551234567"}
    full = Address(type="extension", target="", target_name="alice", name="Alice", detail="desk")
    assert full.to_api() == {
        "type": "extension",
        "target": "",
        "target_name": "alice",
        "name": "Alice",
        "detail": "desk",
    }
    assert Address().to_api() == {"type": "", "target": ""}
    assert Address.model_validate(full.to_api()) == full


def test_tel_regex() -> None:
    assert TEL_RE.match("+1234567") and TEL_RE.match("+123456789012345")
    for bad in ("+123456", "+1234567890123456", "15551234567", "+1555 123", "+"):
        assert not TEL_RE.match(bad)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "tel", "target": "+15559876543"},
        {"type": "tel", "target": "+1 555 987 6543"},
        {"type": "sip", "target": "sip:bob@example.com"},
        {"type": "extension", "target_name": "alice"},
        {"type": "extension", "target": AGENT},
        {"type": "agent", "target": AGENT},
        {"type": "tel", "target": "${voipbin.call.source.target}"},
        {"type": "${dest_type}", "target": "${dest}"},
    ],
)
def test_dialable(raw: dict) -> None:
    address = validate_dial_address(raw, "destinations[0]")
    assert isinstance(address, Address)
    assert validate_dial_address(address, "destinations[0]") == address


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        ({"type": "tel", "target": "+1555"}, "destinations[1].target", "E.164"),
        ({"type": "tel", "target": "15551234567"}, "destinations[1].target", "E.164"),
        ({"type": "tel"}, "destinations[1].target", "E.164"),
        ({"type": "sip", "target": "example.com"}, "destinations[1].target", "user@domain"),
        ({"type": "extension"}, "destinations[1].target", "target_name"),
        ({"type": "agent", "target": "bob"}, "destinations[1].target", "UUID"),
        ({"type": "email", "target": "a@b.c"}, "destinations[1].type", "cannot be called"),
        ({"type": "conference", "target": AGENT}, "destinations[1].type", "cannot be called"),
        ({"type": "whatsapp", "target": "+15551234567"}, "destinations[1].type", "cannot be called"),
        ({"target": "+15551234567"}, "destinations[1].type", "required"),
        ({"type": "fax", "target": "1"}, "destinations[1].type", "unknown address type"),
        ({"type": "tel", "target": ["+1"]}, "destinations[1].target", "string"),
    ],
)
def test_not_dialable(raw: dict, field: str, expected: str) -> None:
    with pytest.raises(ActionValidationError) as info:
        validate_dial_address(raw, "destinations[1]")
    assert (info.value.reason, info.value.field) == ("INVALID_ARGUMENT", field)
    assert info.value.message.startswith(field) and expected in info.value.message


def test_not_an_object() -> None:
    with pytest.raises(ActionValidationError) as info:
        validate_dial_address("+15551234567", "destination")
    assert info.value.field == "destination"
