"""A real baresip softphone for interop tests: its config on loopback, started and driven over its
ctrl_tcp JSON interface, killed at the end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
import wave
from pathlib import Path

from tests.sip.conftest import free_port

MODULES = Path("/usr/lib/baresip/modules")


class Baresip:
    def __init__(self, proc: asyncio.subprocess.Process, sip_port: int, ctrl_port: int, log: Path) -> None:
        self.proc, self.sip_port, self.ctrl_port, self.log = proc, sip_port, ctrl_port, log

    async def command(self, command: str, params: str = "") -> dict:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        try:
            payload = json.dumps({"command": command, "params": params, "token": "t1"}).encode()
            writer.write(b"%d:%s," % (len(payload), payload))
            await writer.drain()
            while True:  # skip events until our response
                length = int((await reader.readuntil(b":"))[:-1])
                msg = json.loads((await reader.readexactly(length + 1))[:-1])
                if msg.get("response"):
                    return msg
        finally:
            writer.close()


async def start_baresip(tmp: Path, account: str) -> Baresip:
    wav = tmp / "tone.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(
            b"".join(struct.pack("<h", int(8000 * math.sin(i / 8000 * 2764.6))) for i in range(40000))
        )
    for _ in range(20):
        sip_port = free_port()
        if sip_port < 65000 and free_port_pair(sip_port + 1):
            break
    ctrl_port = free_port()
    (tmp / "config").write_text(
        f"module_path {MODULES}\nsip_listen 127.0.0.1:{sip_port}\naudio_source aufile,{wav}\n"
        "audio_player alsa,null\naudio_alert alsa,null\nausrc_srate 8000\n"
        "module g711.so\nmodule aufile.so\nmodule alsa.so\n"
        "module_app account.so\nmodule_app contact.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n"
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}\nrtp_ports 30000-30999\n"
    )
    (tmp / "accounts").write_text(account + "\n")
    log = tmp / "baresip.log"
    proc = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(tmp), stdin=asyncio.subprocess.DEVNULL, stdout=log.open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(100):  # wait for ctrl_tcp
        with contextlib.suppress(OSError):
            _, w = await asyncio.open_connection("127.0.0.1", ctrl_port)
            w.close()
            return Baresip(proc, sip_port, ctrl_port, log)
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    proc.kill()
    raise RuntimeError("baresip did not start: " + log.read_text(errors="replace"))


def free_port_pair(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
