"""``RtpStream``: one plain-RTP G.711 stream with no sockets, no timers and no event loop (sans-I/O).

The aiortc-style core of a session: datagrams come in with their arrival time, the clock calls two
functions per 20 ms slot, and datagrams go out through the ``send`` callable::

    stream = RtpStream(send=out.append)             # out: list of datagrams to send
    stream.configure(payload_type=8, dtmf_pt=101)
    digits = stream.receive(datagram, now)          # -> jitter buffer (+ RFC 4733 digits completed)
    pcm, digits = stream.frame_in(n, now)           # slot n inbound: 320 bytes of PCM (conceals loss)
    played = stream.frame_out(n, pcm_or_None, now)  # slot n outbound: one RTP packet (or DTMF/silence)
    stream.receive_rtcp(datagram, now); stream.rtcp_report(bye=False) -> bytes
    stream.enable_release(True, now)                # listeners: frames in arrival order, in
    stream.receive(...); stream.released            #   ``released`` after receive/poll_release

Inbound: packets of either G.711 law are decoded by their own PT via the jitter buffer, which orders
them and absorbs network jitter (its depth is the default session's 80 ms: jitter up to 60 ms plays
without a hole); a lost packet is concealed by repeating the last frame at -6 dB, then -12 dB, then
silence. RFC 4733 events bypass decoding (their redundant end packets share a sequence number) and
take their slot in the buffer as silence, so they are neither counted nor concealed as loss.
Anything else is counted and dropped, as are malformed datagrams.

Outbound: slot ``n`` carries RTP timestamp ``ts_base + 160 n``, so skipped slots (after a stall)
keep the timeline; ``ptime`` > 20 packs several frames per packet; DTMF digits queued with
:meth:`queue_dtmf` replace audio while they play. Hand-written for the reasons in the package
docstring (plain RTP/AVP G.711 at hundreds of streams per process; aiortc is WebRTC-only).
"""

from __future__ import annotations

import os
import random
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from voipbin.media import rtcp
from voipbin.media.dtmf import DtmfDecoder, DtmfDigit, TelephoneEvent, encode_digit
from voipbin.media.errors import MediaParseError
from voipbin.media.g711 import PT_PCMA, PT_PCMU, EncodeBatch, G711Codec, quiet_codes
from voipbin.media.jitter import JitterBuffer, Playout
from voipbin.media.release import InOrderRelease
from voipbin.media.rtp import RtpPacket
from voipbin.media.stats import ReceiveStats, RtpStats
from voipbin.media.wav import FRAME_BYTES, FRAME_SAMPLES, MEDIA_RATE

SILENCE_PCM = bytes(FRAME_BYTES)
# A hole waits this long for its packet before listeners get it concealed: with the wait starting
# when the next packet arrives, network jitter up to 80 ms still produces no hole.
RELEASE_WINDOW_S = 0.060


QUIET_PEAK = 1000  # |sample| below this (about -30 dBFS) is a pause, where 20 ms can go unheard
# Per law, the code bytes that decode below QUIET_PEAK: a payload is quiet when nothing else is left.
_QUIET_CODES = {PT_PCMU: quiet_codes(PT_PCMU, QUIET_PEAK), PT_PCMA: quiet_codes(PT_PCMA, QUIET_PEAK)}
_HEADER = struct.Struct("!BBHII")


def conceal_frame(last: bytes, run: int) -> bytes:
    """The ``run``-th concealed frame after ``last``: it at -6 dB, then -12 dB, then silence."""
    if run > 2:
        return SILENCE_PCM
    x = np.frombuffer(last, dtype=np.int16) >> run
    return x.astype(np.int16).tobytes()


def default_jitter() -> JitterBuffer[tuple[int, bytes]]:
    """80 ms of prefill (nothing is known of the link yet: jitter up to 60 ms never empties it); then
    the depth follows the measured jitter, between 40 ms (a clean link) and 240 ms, re-checked every
    2 s. What the listener hears is as fresh as the link allows."""
    return JitterBuffer(target=4, min_depth=2, max_depth=12, calm_ticks=100)


class RtpStream:
    def __init__(
        self,
        *,
        send: Callable[[bytes], None],
        jitter: JitterBuffer[tuple[int, bytes]] | None = None,
        ssrc: int | None = None,
        cname: str | None = None,
        dtmf_timeout: float = 0.3,
        on_dtmf_sent: Callable[[Any], None] | None = None,
    ) -> None:
        self.send = send
        self.on_dtmf_sent = on_dtmf_sent or (lambda token: None)
        self.jitter: JitterBuffer[tuple[int, bytes]] = jitter or default_jitter()
        self.ssrc = random.getrandbits(32) if ssrc is None else ssrc
        self.cname = cname or f"voipbin-{os.getpid()}-{self.ssrc:08x}"
        self.stats = RtpStats()
        self.sending = True  # the shell clears it while it has nowhere to send (no remote, not latched)
        self.payload_type = PT_PCMU
        self.dtmf_pt: int | None = None
        self.ptime = 20
        self._codec = G711Codec(PT_PCMU)
        self._decoders = {PT_PCMU: G711Codec(PT_PCMU), PT_PCMA: G711Codec(PT_PCMA)}
        self._silence_payload = bytes([self._codec.silence]) * FRAME_SAMPLES
        # outbound
        self._seq = random.getrandbits(16)
        self.ts_base = random.getrandbits(32)
        self._first_packet = True
        self._pending_out: list[bytes] = []  # frames accumulated for ptime > 20
        self._pending_ts = 0
        self._last_sent_ts = self.ts_base
        self._last_send_at = 0.0
        self._dtmf_tx: deque[tuple[str, int, int, Any]] = deque()
        self._dtmf_packets: list[TelephoneEvent] = []
        self._dtmf_ts = 0
        self._dtmf_gap = 0
        self._dtmf_token: Any = None
        self._batch_ts = 0  # the slot's timestamp and time while its frame is in an EncodeBatch
        self._batch_now = 0.0
        # inbound
        self._rx = ReceiveStats(self.stats)
        self._remote_ssrc: int | None = None
        self._in_pcm = bytearray()
        self._last_in = SILENCE_PCM
        self._conceal_run = 0
        self._had_audio = False
        self._skip_owed = 0
        self._dtmf_rx = DtmfDecoder(timeout=dtmf_timeout)
        # release in arrival order (enable_release), for listeners that need no pacing
        self.release: InOrderRelease[tuple[int, bytes]] | None = None
        self.released: list[bytes] = []  # 20 ms PCM frames released, not yet taken by the shell
        self._rel_buf = bytearray()
        self._rel_last = SILENCE_PCM
        self._rel_run = 0
        self._rel_packet_bytes = FRAME_BYTES
        self._paced_listening = False  # frame_in had a listener at the last tick
        # rtcp
        self.last_sr: tuple[int, float] | None = None  # (middle 32 bits of NTP, arrival time)
        self.remote_bye = False

    def configure(self, payload_type: int = PT_PCMU, dtmf_pt: int | None = None, ptime: int = 20) -> None:
        if ptime <= 0 or ptime % 20:
            raise ValueError("ptime must be a positive multiple of 20 ms")
        self._codec = G711Codec(payload_type)
        self.payload_type = payload_type
        self._silence_payload = bytes([self._codec.silence]) * FRAME_SAMPLES
        self.dtmf_pt = dtmf_pt
        self.ptime = ptime
        self._pending_out.clear()

    # ------------------------------------------------------------------ receive
    def receive(self, data: bytes, now: float) -> list[DtmfDigit]:
        """One RTP datagram that arrived at ``now``; returns DTMF digits it completed."""
        if len(data) >= 12 and data[0] == 0x80:  # the plain header (rtp.parse_plain, inlined: per packet)
            _, pt, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
            pt &= 0x7F
            payload = data[12:]
        else:
            try:
                pkt = RtpPacket.parse(data)
            except MediaParseError:
                self.stats.malformed_in += 1
                return []
            pt, seq, ts, ssrc, payload = (
                pkt.payload_type, pkt.sequence_number, pkt.timestamp, pkt.ssrc, pkt.payload,
            )  # fmt: skip
        stats = self.stats
        stats.packets_in += 1
        stats.bytes_in += len(payload)
        if pt != self.dtmf_pt:
            if pt not in self._decoders:
                stats.unknown_pt_in += 1
                return []
            if ssrc != self._remote_ssrc:
                self._new_source(ssrc)
            self._rx.update(seq, ts, now)
            if not self.jitter.push(seq, (pt, payload), now, ts):
                stats.late_or_duplicate += 1
            if self.release is not None:
                items = self.release.push(seq, (pt, payload), now)
                if items:
                    self._release_out(items)
            return []
        try:
            digits = self._dtmf_rx.feed(ts, payload, now)
        except MediaParseError:
            stats.malformed_in += 1
            return []
        if ssrc != self._remote_ssrc:
            self._new_source(ssrc)
        # telephone-event timestamps mark the event's start, not this packet: no timing from them
        self._rx.update(seq, ts, now, timing=False)
        if not self.jitter.push(seq, (-1, b"")):
            stats.late_or_duplicate += 1
        if self.release is not None:
            items = self.release.push(seq, (-1, b""), now)
            if items:
                self._release_out(items)
        stats.dtmf_in += len(digits)
        return digits

    def _new_source(self, ssrc: int) -> None:
        if self._remote_ssrc is not None:  # new source (peer restarted or re-INVITE): start over
            self.jitter.reset()
            self._rx.reset()
            if self.release is not None:
                self.release.reset()
        self._remote_ssrc = ssrc

    def frame_in(self, n: int, now: float, listening: bool = True) -> tuple[bytes | None, list[DtmfDigit]]:
        """Slot ``n``: the inbound 20 ms frame (None when nobody is ``listening``: the buffer still
        drains at the media rate, without decoding) and DTMF digits whose end timed out."""
        digits = self._dtmf_rx.poll(now) if self._dtmf_rx.active else []
        self.stats.dtmf_in += len(digits)
        self._paced_listening = listening
        if not listening:
            if self.jitter.wants_trim:  # nobody hears it: latency can go at once
                self.jitter.trim()
            self._in_pcm.clear()
            self._last_in = SILENCE_PCM
            self._skip_owed += FRAME_SAMPLES
            while self._skip_owed > 0:  # by samples: 40 ms packets are consumed every other tick
                status, item = self.jitter.pop()
                if status is Playout.EMPTY:
                    self._skip_owed = 0
                    break
                self._skip_owed -= len(item[1]) if item is not None and item[0] >= 0 else FRAME_SAMPLES
            return None, digits
        buf = self._in_pcm
        if not buf:  # fast path: one 20 ms packet -> one frame, no reassembly copies
            status, item = self.jitter.pop()
            if status is Playout.OK:
                assert item is not None
                pt, payload = item
                if pt >= 0 and len(payload) == FRAME_SAMPLES:
                    pcm = self._decoders[pt].decode(payload)
                    self._last_in = pcm
                    self._conceal_run = 0
                    self._had_audio = True
                    if self.jitter.wants_trim and not payload.translate(None, _QUIET_CODES[pt]):
                        self.jitter.trim()  # a settled link: drop 20 ms of buffering in a pause
                    return pcm, digits
            self._absorb(status, item)
        while len(buf) < FRAME_BYTES:
            self._absorb(*self.jitter.pop())
        pcm = bytes(buf[:FRAME_BYTES])
        del buf[:FRAME_BYTES]
        return pcm, digits

    def _absorb(self, status: Playout, item: tuple[int, bytes] | None) -> None:
        """Append one playout slot's worth of PCM to the reassembly buffer."""
        buf = self._in_pcm
        if status is Playout.OK:
            assert item is not None
            pt, payload = item
            if pt < 0:  # a telephone-event slot
                buf += SILENCE_PCM
                return
            pcm = self._decoders[pt].decode(payload)
            if len(pcm) >= FRAME_BYTES:
                self._last_in = pcm[-FRAME_BYTES:]
            self._conceal_run = 0
            self._had_audio = True
            buf += pcm
        elif status is Playout.LOST or (self._had_audio and self._conceal_run < 2):
            buf += self._conceal()
        else:
            buf += SILENCE_PCM

    def _conceal(self) -> bytes:
        """Packet-loss concealment by repetition: last frame at -6 dB, then -12 dB, then silence."""
        self._conceal_run += 1
        self.stats.concealed_frames += 1
        return conceal_frame(self._last_in, self._conceal_run)

    # ------------------------------------------------------------------ release in arrival order
    def enable_release(self, on: bool, now: float, window: float = RELEASE_WINDOW_S) -> None:
        """Also hand inbound audio to listeners in sequence order as soon as it is complete
        (:class:`~voipbin.media.release.InOrderRelease`): 20 ms frames collect in ``released``
        (the shell takes them after each :meth:`receive` and :meth:`poll_release`)."""
        if not on:
            self.release = None
            self.released = []
            return
        if self.release is None:
            self.release = InOrderRelease(window)
            self.release.start(now)
            self._rel_buf.clear()
            self._rel_last = SILENCE_PCM
            self._rel_run = 0

    def poll_release(self, now: float) -> None:
        """Each tick: holes that waited the window are concealed, filler while nothing arrives."""
        rel = self.release
        if rel is None:
            return
        items = rel.poll(now)
        if items:
            self._release_out(items)
        for _ in range(rel.fill(now)):
            self._rel_append(self._rel_conceal())

    def _release_out(self, items: list[tuple[int, bytes] | None]) -> None:
        for item in items:
            if item is None:  # a hole given up on: one packet's worth of concealment
                frames = max(1, self._rel_packet_bytes // FRAME_BYTES)
                for _ in range(frames):
                    self._rel_append(self._rel_conceal())
                if not self._paced_listening:  # else the playout path counts the same loss
                    self.stats.concealed_frames += frames
                continue
            pt, payload = item
            if pt < 0:  # a telephone-event slot: silence, as in the playout path
                self._rel_append(SILENCE_PCM)
                continue
            pcm = self._decoders[pt].decode(payload)
            self._rel_packet_bytes = len(pcm)
            self._rel_run = 0
            self._rel_last = pcm[-FRAME_BYTES:] if len(pcm) >= FRAME_BYTES else self._rel_last
            self._rel_append(pcm)

    def _rel_append(self, pcm: bytes) -> None:
        buf = self._rel_buf
        if not buf and len(pcm) == FRAME_BYTES:  # the common 20 ms packet: no reassembly copy
            self.released.append(pcm)
            return
        buf += pcm
        while len(buf) >= FRAME_BYTES:
            self.released.append(bytes(buf[:FRAME_BYTES]))
            del buf[:FRAME_BYTES]

    def _rel_conceal(self) -> bytes:
        self._rel_run += 1
        return conceal_frame(self._rel_last, self._rel_run)

    # ------------------------------------------------------------------ send
    def queue_dtmf(self, digit: str, duration_ms: int = 100, gap_ms: int = 60, token: Any = None) -> None:
        """Send ``digit`` in the coming slots; ``on_dtmf_sent(token)`` once its end packets are out."""
        encode_digit(digit)  # validates
        self._dtmf_tx.append((digit, duration_ms, gap_ms, token))

    def drop_dtmf(self) -> list[Any]:
        """Forget queued and playing digits; returns their tokens (to cancel their waiters)."""
        tokens = [t for *_, t in self._dtmf_tx]
        self._dtmf_tx.clear()
        if self._dtmf_token is not None:
            tokens.append(self._dtmf_token)
            self._dtmf_token = None
        self._dtmf_packets = []
        return tokens

    def discard_pending(self) -> None:
        """Barge-in: frames gathered for a ptime > 20 packet are dropped."""
        self._pending_out.clear()

    def frame_out(self, n: int, pcm: bytes | None, now: float, batch: EncodeBatch | None = None) -> bytes:
        """Slot ``n``: send ``pcm`` (None: silence), or the DTMF digit in progress. Returns the PCM
        that was played (for outbound taps and recordings). With ``batch`` the encoding joins it."""
        ts = self.ts_base + n * FRAME_SAMPLES
        if self._dtmf_packets or (self._dtmf_tx and self._dtmf_gap <= 0):
            self._dtmf_tick(ts, now)
            return SILENCE_PCM
        if self._dtmf_gap > 0:
            self._dtmf_gap -= 1
        if pcm is None:
            self._send_audio(ts, self._silence_payload, now)
            return SILENCE_PCM
        if batch is not None:
            self._batch_ts, self._batch_now = ts, now  # one frame per stream per tick
            batch.add(self.payload_type, pcm, self)
        else:
            self._send_audio(ts, self._codec.encode(pcm), now)
        return pcm

    def send_encoded(self, payload: bytes) -> None:
        """The :class:`EncodeBatch` hands this tick's frame back encoded."""
        self._send_audio(self._batch_ts, payload, self._batch_now)

    def _send_audio(self, ts: int, payload: bytes, now: float) -> None:
        if self.ptime != 20:
            if not self._pending_out:
                self._pending_ts = ts
            self._pending_out.append(payload)
            if len(self._pending_out) * 20 < self.ptime:
                return
            payload = b"".join(self._pending_out)
            ts = self._pending_ts
            self._pending_out.clear()
        self._send(self.payload_type, ts, payload, now)

    def _dtmf_tick(self, ts: int, now: float) -> None:
        marker = False
        if not self._dtmf_packets:
            digit, duration, gap, token = self._dtmf_tx.popleft()
            self._dtmf_packets = encode_digit(digit, duration)
            self._dtmf_ts = ts
            self._dtmf_gap = max(0, gap // 20)
            self._dtmf_token = token
            self._pending_out.clear()
            marker = True
        ev = self._dtmf_packets.pop(0)
        if self.dtmf_pt is not None:
            self._send(self.dtmf_pt, self._dtmf_ts, ev.serialize(), now, marker)
        if not self._dtmf_packets:
            self.stats.dtmf_out += 1
            token, self._dtmf_token = self._dtmf_token, None
            self.on_dtmf_sent(token)

    def _send(self, pt: int, ts: int, payload: bytes, now: float, marker: bool = False) -> None:
        if not self.sending:
            return
        if self._first_packet:
            marker, self._first_packet = True, False
        seq = self._seq = (self._seq + 1) & 0xFFFF
        # rtp.build_header, inlined (per packet)
        self.send(_HEADER.pack(0x80, 0x80 | pt if marker else pt, seq, ts & 0xFFFFFFFF, self.ssrc) + payload)
        stats = self.stats
        if self._last_send_at:
            gap = (now - self._last_send_at) * 1000
            if gap > stats.max_gap_out_ms:
                stats.max_gap_out_ms = gap
        self._last_send_at = now
        stats.packets_out += 1
        stats.bytes_out += len(payload)
        self._last_sent_ts = ts

    # ------------------------------------------------------------------ RTCP
    def receive_rtcp(self, data: bytes, now: float) -> None:
        try:
            packets = rtcp.parse_compound(data)
        except MediaParseError:
            self.stats.malformed_in += 1
            return
        self.stats.rtcp_in += 1
        for p in packets:
            if isinstance(p, rtcp.SenderReport):
                self.last_sr = (((p.ntp_sec & 0xFFFF) << 16) | (p.ntp_frac >> 16), now)
            if isinstance(p, rtcp.SenderReport | rtcp.ReceiverReport):
                for block in p.reports:
                    if block.ssrc == self.ssrc:
                        self.stats.remote_reports += 1
                        self.stats.remote_fraction_lost = block.fraction_lost / 256
                        self.stats.remote_jitter_ms = block.jitter * 1000 / MEDIA_RATE
            elif isinstance(p, rtcp.Bye):
                self.remote_bye = True

    def _report_blocks(self, now: float) -> list[rtcp.ReportBlock]:
        if self._remote_ssrc is None:
            return []
        lsr, dlsr = 0, 0
        if self.last_sr is not None:
            lsr = self.last_sr[0]
            dlsr = int((now - self.last_sr[1]) * 65536)
        return [
            rtcp.ReportBlock(
                ssrc=self._remote_ssrc,
                fraction_lost=self._rx.interval_fraction_lost(),
                packets_lost=self.stats.lost,
                highest_sequence=self._rx.max_ext,
                jitter=self._rx.jitter_units,
                lsr=lsr,
                dlsr=dlsr,
            )
        ]

    def rtcp_report(self, now: float, bye: bool = False) -> bytes:
        """A compound SR (or RR before we sent anything) + SDES (+ BYE)."""
        packets: list[rtcp.RtcpPacket] = []
        if self.stats.packets_out:
            sec, frac = rtcp.ntp_now()
            packets.append(
                rtcp.SenderReport(
                    self.ssrc, sec, frac, self._last_sent_ts, self.stats.packets_out, self.stats.bytes_out,
                    self._report_blocks(now),
                )
            )  # fmt: skip
        else:
            packets.append(rtcp.ReceiverReport(self.ssrc, self._report_blocks(now)))
        packets.append(rtcp.SourceDescription([(self.ssrc, self.cname)]))
        if bye:
            packets.append(rtcp.Bye([self.ssrc]))
        self.stats.rtcp_out += 1
        return rtcp.serialize_compound(packets)
