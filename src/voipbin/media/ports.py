"""RTP port allocation over the configured range: even port for RTP, the next odd one for RTCP.

Thread-safe (a plain lock, never held across an await) so the SIP layer and media sessions may
allocate from any thread or task. ``bind_pair`` allocates and binds both sockets in one step,
skipping pairs another process already holds; ``release`` returns a pair when its session closes.
"""

from __future__ import annotations

import socket
import threading
from collections import deque

from voipbin.media.errors import PortsExhaustedError


class PortAllocator:
    def __init__(self, port_min: int = 20000, port_max: int = 20999) -> None:
        first = port_min + (port_min & 1)  # RTP ports are even
        if first + 1 > port_max:
            raise ValueError(f"RTP port range {port_min}-{port_max} holds no even/odd pair")
        self.port_min, self.port_max = port_min, port_max
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        with self._lock:
            return len(self._free)

    def allocate(self) -> int:
        """Reserve a pair and return its even RTP port (round-robin, so ports are reused late)."""
        with self._lock:
            if not self._free:
                raise PortsExhaustedError(f"no free RTP ports in {self.port_min}-{self.port_max}")
            port = self._free.popleft()
            self._used.add(port)
            return port

    def release(self, port: int) -> None:
        with self._lock:
            if port in self._used:
                self._used.remove(port)
                self._free.append(port)

    def bind_pair(self, host: str = "0.0.0.0") -> tuple[int, socket.socket, socket.socket]:
        """Allocate a pair and bind both UDP sockets, skipping pairs in use elsewhere on the host."""
        for _ in range(self.available + 1):
            port = self.allocate()
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            rtp = socket.socket(family, socket.SOCK_DGRAM)
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtp.bind((host, port))
                rtcp.bind((host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                with self._lock:  # held by another process: keep it out of rotation for now
                    self._used.discard(port)
                    self._free.append(port)
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return port, rtp, rtcp
        raise PortsExhaustedError(f"no bindable RTP port pair in {self.port_min}-{self.port_max}")
