"""Bindings persistence hook: the store hears every change, and load() brings bindings back after a
restart with their wall-clock expiry (fake monotonic and wall clocks, no sockets)."""

from __future__ import annotations

import json

from voipbin.sip import Binding, Bindings, BindingStore, Registrar, SipRequest, Source, parse_message

PHONE = Source("198.51.100.7", 40123, "udp")  # the NATed address the REGISTER came from
AOR = "sip:1001@voipbin.test"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict] = {}
        self.log: list[tuple[str, str, str]] = []

    def save(self, binding: Binding) -> None:
        self.rows[(binding.aor, binding.contact)] = json.loads(json.dumps(binding.to_record()))
        self.log.append(("save", binding.aor, binding.contact))

    def delete(self, aor: str, contact: str) -> None:
        self.rows.pop((aor, contact), None)
        self.log.append(("delete", aor, contact))


def register(contact: str, expires: int, cseq: int = 1, call_id: str = "reg-1") -> SipRequest:
    msg = parse_message(
        (
            "REGISTER sip:voipbin.test SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKr" + str(cseq) + "\r\n"
            f"From: <{AOR}>;tag=f1\r\nTo: <{AOR}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: {contact}\r\nExpires: {expires}\r\nUser-Agent: desk-phone\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, SipRequest)
    return msg


async def no_lookup(_user: str, _realm: str) -> str | None:
    return None


def setup(mono: float = 1000.0, wall: float = 1_700_000_000.0):
    store = MemoryStore()
    mono_clock, wall_clock = Clock(mono), Clock(wall)
    bindings = Bindings(mono_clock, store=store, wall_clock=wall_clock)
    registrar = Registrar("voipbin.test", no_lookup, bindings=bindings, require_auth=False, min_expires=10)
    return store, bindings, registrar, mono_clock, wall_clock


def test_memory_store_satisfies_the_protocol() -> None:
    store: BindingStore = MemoryStore()
    assert store is not None


async def test_register_refresh_unregister_reach_the_store() -> None:
    store, bindings, registrar, mono, wall = setup()
    out = await registrar.process(register("<sip:1001@192.168.1.20:5060>", 300), PHONE)
    assert out.status == 200
    row = store.rows[(AOR, "sip:1001@192.168.1.20:5060")]
    assert row["expires_epoch"] == wall.t + 300  # wall clock, not the monotonic 1300
    assert (row["source_ip"], row["source_port"], row["transport"]) == ("198.51.100.7", 40123, "udp")
    assert (row["call_id"], row["cseq"], row["user_agent"]) == ("reg-1", 1, "desk-phone")
    mono.t += 100
    wall.t += 100
    await registrar.process(register("<sip:1001@192.168.1.20:5060>", 600, cseq=2), PHONE)
    assert store.rows[(AOR, "sip:1001@192.168.1.20:5060")]["expires_epoch"] == wall.t + 600
    await registrar.process(register("<sip:1001@192.168.1.20:5060>", 0, cseq=3), PHONE)
    assert store.rows == {}
    assert [op for op, _, _ in store.log] == ["save", "save", "delete"]
    assert bindings.lookup(AOR) == []


async def test_expiry_and_wildcard_delete_from_the_store() -> None:
    store, bindings, registrar, mono, _wall = setup()
    await registrar.process(register("<sip:a@10.0.0.1>", 60), PHONE)
    await registrar.process(register("<sip:b@10.0.0.2>", 120, cseq=2), PHONE)
    mono.t += 61
    assert [b.contact for b in bindings.lookup(AOR)] == ["sip:b@10.0.0.2"]
    assert ("delete", AOR, "sip:a@10.0.0.1") in store.log
    await registrar.process(register("*", 0, cseq=3), PHONE)
    assert store.rows == {} and store.log[-1] == ("delete", AOR, "sip:b@10.0.0.2")


async def test_load_after_restart_keeps_the_remaining_lifetime() -> None:
    store, _bindings, registrar, _mono, wall = setup()
    await registrar.process(register("<sip:1001@192.168.1.20:5060>", 300), PHONE)
    await registrar.process(register("<sip:old@192.168.1.21>", 30, call_id="reg-2"), PHONE)
    # the process dies; 100 s later a new one starts with an unrelated monotonic clock
    rows = list(store.rows.values())
    store2 = MemoryStore()
    fresh = Bindings(Clock(5.0), store=store2, wall_clock=Clock(wall.t + 100))
    assert fresh.load(Binding.from_record(r) for r in rows) == 1
    (b,) = fresh.lookup(AOR)
    assert b.contact == "sip:1001@192.168.1.20:5060" and b.expires_in(fresh.now()) == 200
    assert b.source == PHONE  # reachable again through the NAT binding it registered from
    assert store2.log == [("delete", AOR, "sip:old@192.168.1.21")]  # the expired one is cleaned up
    assert [r.contact for r in fresh.all()] == [b.contact]


def test_a_failing_store_does_not_break_bindings() -> None:
    class Broken:
        def save(self, binding: Binding) -> None:
            raise RuntimeError("db down")

        def delete(self, aor: str, contact: str) -> None:
            raise RuntimeError("db down")

    bindings = Bindings(Clock(0.0), store=Broken(), wall_clock=Clock(1e9))
    bindings.put(Binding(AOR, "sip:x@10.0.0.9", 60.0, PHONE, "c", 1))
    assert [b.contact for b in bindings.lookup(AOR)] == ["sip:x@10.0.0.9"]
    bindings.remove(AOR, "sip:x@10.0.0.9")
    assert bindings.lookup(AOR) == []


def test_record_round_trip() -> None:
    b = Binding(AOR, "sip:x@10.0.0.9;transport=tcp", 60.0, Source("10.0.0.9", 5060, "tcp"), "c", 4, 0.5,
                "ua", "1001", 1_700_000_060.0)  # fmt: skip
    again = Binding.from_record(json.loads(json.dumps(b.to_record())))
    again.expires_at = b.expires_at
    assert again == b
