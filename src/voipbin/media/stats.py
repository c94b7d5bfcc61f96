"""Per-session RTP statistics, including RFC 3550 (A.3, A.8) loss and interarrival jitter."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class RtpStats:
    packets_out: int = 0
    bytes_out: int = 0  # payload octets, as RTCP counts them
    packets_in: int = 0
    bytes_in: int = 0
    malformed_in: int = 0
    unknown_pt_in: int = 0
    lost: int = 0  # expected - received (RFC 3550 A.3), never negative
    late_or_duplicate: int = 0
    concealed_frames: int = 0
    jitter_ms: float = 0.0
    max_gap_ms: float = 0.0  # largest wall-clock gap between consecutive inbound audio packets
    max_gap_out_ms: float = 0.0  # largest wall-clock gap between consecutive packets we sent
    late_ticks: int = 0  # clock ticks that fired more than one frame late
    skipped_ticks: int = 0  # slots skipped after a loop stall (never sent as a burst)
    dtmf_in: int = 0
    dtmf_out: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    remote_reports: int = 0  # RTCP report blocks the peer sent about our stream
    remote_fraction_lost: float = 0.0  # from the peer's RTCP report about us
    remote_jitter_ms: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class ReceiveStats:
    """Feeds :class:`RtpStats` from inbound audio packets of one source."""

    def __init__(self, stats: RtpStats, clock_rate: int = 8000) -> None:
        self.s = stats
        self.clock_rate = clock_rate
        self.base: int | None = None
        self.max_ext = 0
        self.received = 0
        self._transit: float | None = None
        self._jitter = 0.0  # timestamp units
        self._last_arrival: float | None = None
        self.expected_prior = 0
        self.received_prior = 0

    def reset(self) -> None:
        """A new source: sequence accounting starts over (jitter and gap history carry on)."""
        self.base = None
        self.received = self.expected_prior = self.received_prior = 0
        self._transit = None

    def update(self, seq: int, timestamp: int, arrival: float, timing: bool = True) -> None:
        """``timing=False`` for packets whose timestamp is not a sampling instant (RFC 4733 events)."""
        base = self.base
        if base is None:
            base = self.base = self.max_ext = seq
        else:
            delta = (seq - self.max_ext) & 0xFFFF
            if delta < 0x8000:
                self.max_ext += delta
        received = self.received = self.received + 1
        s = self.s
        lost = self.max_ext - base + 1 - received  # expected - received (per packet: inlined)
        s.lost = lost if lost > 0 else 0
        last = self._last_arrival
        if last is not None:
            gap = (arrival - last) * 1000
            if gap > s.max_gap_ms:
                s.max_gap_ms = gap
        self._last_arrival = arrival
        if not timing:
            return
        rate = self.clock_rate
        transit = arrival * rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < rate * 10:  # ignore timestamp jumps (new talkspurt base, wrap)
                self._jitter += (d - self._jitter) / 16
                s.jitter_ms = self._jitter * 1000 / rate
        self._transit = transit

    @property
    def expected(self) -> int:
        return 0 if self.base is None else self.max_ext - self.base + 1

    @property
    def jitter_units(self) -> int:
        return int(self._jitter)

    def interval_fraction_lost(self) -> int:
        """RFC 3550 A.3 fraction lost since the previous report, as 0..255."""
        expected, received = self.expected, self.received
        exp_int = expected - self.expected_prior
        rec_int = received - self.received_prior
        self.expected_prior, self.received_prior = expected, received
        lost_int = exp_int - rec_int
        return 0 if exp_int <= 0 or lost_int <= 0 else min(255, (lost_int << 8) // exp_int)
