"""The labelled turn set: complete vs. unfinished caller turns, synthesised offline, through G.711.

Each item is one caller turn spoken in parts with a natural mid-sentence pause (0.3-1.0 s) between
parts (unfinished until the last part), or in one part (a complete turn): 54 complete and 53 unfinished
turns, a quarter of the unfinished ones with no lexical cue before the pause (the hard case). The sentence is
synthesised whole and cut at word gaps, so speech before a pause keeps its mid-sentence prosody.
Audio: Piper's ``en_US-joe-medium`` voice with its noise inputs at 0 (so synthesis is
deterministic), resampled to 8 kHz, a faint seeded noise floor added (-60 dBFS, a quiet line),
then µ-law encoded and decoded like
a phone call. The AI's question before the turn is part of the label (it shapes what a finished
answer is). Built once and cached under ``var/cache/turnset/<hash of the definitions>``;
``python -m tests.turns.labelled_set`` (re)builds it.

Truth: the time each part's speech ends (its audio trimmed of leading/trailing silence below
-45 dBFS in 10 ms steps) and the pauses' spans. An unfinished item is *cut off* when a detector
ends the turn inside any of its pauses.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RATE = 8000
LEAD_SECS = 0.3
TAIL_SECS = 2.6  # longer than any detector's longest wait, so every turn ends inside the clip


@dataclass(frozen=True)
class Spec:
    id: str
    question: str
    parts: tuple[str, ...]
    pauses: tuple[float, ...] = ()  # between parts

    @property
    def complete_only(self) -> bool:
        return len(self.parts) == 1


HELP = "How can I help you today?"
PHONE = "What is your phone number?"
BIRTH = "What is your date of birth?"
EMAIL = "Can I have your email address?"
# fmt: off
SPECS: tuple[Spec, ...] = (
    # --- complete turns (one part) ---
    Spec("c01", HELP, ("I'd like to book a table for two people tonight.",)),
    Spec("c02", HELP, ("What time do you close on Sundays?",)),
    Spec("c03", "Would you like a window seat?", ("Yes, please.",)),
    Spec("c04", "Is there anything else?", ("No, that's all, thank you.",)),
    Spec("c05", PHONE, ("It's five five five, one two three, four five six seven.",)),
    Spec("c06", "Which day works for you?", ("Tuesday works for me.",)),
    Spec("c07", HELP, ("My internet has been down since this morning.",)),
    Spec("c08", "Can I have your name, please?", ("My name is Anna Schmidt.",)),
    Spec("c09", HELP, ("Can you transfer me to the billing department?",)),
    Spec("c10", "Did that answer your question?", ("Yes, it did.",)),
    Spec("c11", "What is your zip code?", ("Nine four one zero seven.",)),
    Spec("c12", HELP, ("I want to cancel my subscription.",)),
    Spec("c13", "When would you like to come in?", ("Next Friday at three in the afternoon.",)),
    Spec("c14", "How many people?", ("Four.",)),
    Spec("c15", HELP, ("I was charged twice for the same order.",)),
    Spec("c16", "Do you want me to send a confirmation?", ("Sure, send it by email.",)),
    Spec("c17", HELP, ("Where is my package?",)),
    Spec("c18", "Shall I go ahead with the booking?", ("Okay, go ahead.",)),
    Spec("c19", "What seems to be the problem?", ("The app crashes every time I open it.",)),
    Spec("c20", HELP, ("I need to reset my password.",)),
    Spec("c21", "What is your order number?", ("It's four two seven nine one three.",)),
    Spec("c22", "Anything else I can do for you?", ("That's everything, thanks a lot.",)),
    Spec("c23", HELP, ("Could you tell me your opening hours?",)),
    Spec("c24", "Would you prefer morning or evening?", ("Evening is better.",)),
    # --- unfinished turns: a mid-sentence pause, then the rest ---
    Spec("i01", HELP, ("I'd like to change my flight and", "move it to Friday."), (0.6,)),
    Spec("i02", HELP, ("I'm calling because", "my card was declined."), (0.8,)),
    Spec("i03", PHONE, ("It's five five five,", "one two three, four five six seven."), (0.7,)),
    Spec("i04", HELP, ("I want to pay with my", "credit card."), (0.5,)),
    Spec("i05", "Where would you like to go?", ("I need a taxi to the", "airport, terminal two."), (0.9,)),
    Spec("i06", HELP, ("So um", "I have a question about my bill."), (0.6,)),
    Spec("i07", "What time works for you?", ("Maybe at", "half past four."), (0.4,)),
    Spec("i08", HELP, ("I ordered a jacket but", "it arrived in the wrong size."), (1.0,)),
    Spec("i09", "What is your zip code?", ("Nine four", "one zero seven."), (0.5,)),
    Spec("i10", HELP, ("Could you check if", "my payment went through?"), (0.7,)),
    Spec("i11", "How many tickets?", ("Twenty", "five tickets, please."), (0.4,)),
    Spec("i12", HELP, ("I would like to speak with", "someone in sales."), (0.8,)),
    Spec("i13", "What is your account number?", ("It is four two seven", "nine one three."), (0.6,)),
    Spec("i14", HELP, ("The problem is that", "the heating does not work."), (0.9,)),
    Spec("i15", HELP, ("I moved last month so", "I need to update my address."), (0.5,)),
    Spec("i16", "When would you like to come in?", ("On Monday or", "maybe Tuesday morning."), (0.7,)),
    Spec("i17", HELP, ("My daughter and I", "want to join the gym."), (0.3,)),
    Spec("i18", HELP, ("I'd like a refund for", "the shoes I bought."), (1.0,)),
    # unfinished without a lexical cue (the part before the pause could end a sentence): the hard case
    Spec("i19", HELP, ("I'd like to book a table", "for four on Saturday."), (0.6,)),
    Spec("i20", HELP, ("I lost my card", "yesterday at the station."), (0.5,)),
    Spec("i21", HELP, ("I need help with my order", "from last week."), (0.8,)),
    Spec("i22", "What seems to be the problem?", ("The screen is broken", "since I dropped it."), (0.4,)),
    # two pauses
    Spec("i23", HELP, ("I want to", "change my plan and", "add a second line."), (0.5, 0.7)),
    Spec("i24", PHONE, ("Five five five", "one two three", "four five six seven."), (0.4, 0.6)),
    # --- added (appended, so the first 48 keep their noise seeds): more complete turns ---
    Spec("c25", HELP, ("I'd like to check the status of my refund.",)),
    Spec("c26", BIRTH, ("March third, nineteen eighty five.",)),
    Spec("c27", EMAIL, ("It's anna at example dot com.",)),
    Spec("c28", HELP, ("Is the store open on public holidays?",)),
    Spec("c29", "Would you like to add insurance?", ("No, thanks.",)),
    Spec("c30", "Is this the right address?", ("Yes, that's correct.",)),
    Spec("c31", HELP, ("My order arrived damaged.",)),
    Spec("c32", "How would you like to pay?", ("By credit card.",)),
    Spec("c33", PHONE, ("Two zero two, five five five, zero one four three.",)),
    Spec("c34", HELP, ("I'd like to upgrade my plan to the premium one.",)),
    Spec("c35", "Do you have your booking reference?", ("I think so.",)),
    # complete, but ending on a word that usually continues a sentence: costs wait, never a cut
    Spec("c36", HELP, ("Who am I speaking with?",)),
    Spec("c37", "Is there anything else?", ("Not that I know of.",)),
    Spec("c38", "What seems to be the problem?", ("I don't know what it is.",)),
    Spec("c39", "What time would suit you?", ("Around ten in the morning would be great.",)),
    Spec("c40", HELP, ("Please cancel my appointment for tomorrow.",)),
    Spec("c41", "How many nights?", ("Three nights.",)),
    Spec("c42", "What is your zip code?", ("It's one zero zero zero one.",)),
    Spec("c43", HELP, ("The water in my apartment is not working.",)),
    Spec("c44", "Did you receive the email?", ("No, I didn't.",)),
    Spec("c45", HELP, ("Can I pay my bill over the phone?",)),
    Spec("c46", "Which colour would you like?", ("The blue one.",)),
    Spec("c47", HELP, ("I'd like to speak to a manager, please.",)),
    Spec("c48", "Would you like a receipt?", ("Yes, by email please.",)),
    Spec("c49", HELP, ("I forgot my password again.",)),
    Spec("c50", "What is your account number?", ("Eight one five three two zero.",)),
    Spec("c51", "Where are you calling from?", ("From Berlin.",)),
    Spec("c52", "Shall I book the earlier train?", ("Yes, the earlier one is fine.",)),
    Spec("c53", HELP, ("We need a plumber as soon as possible.",)),
    Spec("c54", "Anything else today?", ("No, that's it.",)),
    # --- added: more unfinished turns, the same mix of cues (most) and no cue (about a quarter) ---
    Spec("i25", HELP, ("I'd like to order a pizza with", "extra cheese and mushrooms."), (0.7,)),
    Spec("i26", PHONE, ("My number is", "two zero two, five five five, zero one four three."), (0.6,)),
    Spec("i27", HELP, ("I wanted to ask about the", "new pricing plans."), (0.5,)),
    Spec("i28", BIRTH, ("It's the twenty", "third of March."), (0.4,)),
    Spec("i29", HELP, ("Um, I think", "my account was hacked."), (0.8,)),
    Spec("i30", HELP, ("Can you tell me when", "the next bus leaves?"), (0.6,)),
    Spec("i31", "How would you like to pay?", ("With my", "debit card."), (0.5,)),
    Spec("i32", HELP, ("I have a problem with", "my last invoice."), (0.9,)),
    Spec("i33", "What is your account number?", ("Eight one five", "three two zero."), (0.7,)),
    Spec("i34", HELP, ("I'd like to know if", "you deliver on weekends."), (0.5,)),
    Spec("i35", HELP, ("The thing is", "I never got the package."), (0.7,)),
    Spec("i36", "When would you like to come in?", ("Sometime next week, maybe on", "Wednesday."), (0.6,)),
    Spec("i37", HELP, ("I was charged for", "something I never ordered."), (0.8,)),
    Spec("i38", EMAIL, ("It's anna dot", "schmidt at example dot com."), (0.5,)),
    Spec("i39", HELP, ("So basically", "my phone keeps restarting."), (0.4,)),
    Spec("i40", HELP, ("I'd like to book", "a room for two nights."), (0.6,)),
    Spec("i41", "What is your zip code?", ("One zero", "zero zero one."), (0.8,)),
    Spec("i42", HELP, ("My husband and", "I want to open a joint account."), (0.5,)),
    Spec("i43", HELP, ("I'm not sure if", "I should upgrade or not."), (0.7,)),
    Spec("i44", HELP, ("Could you please", "send me a copy of the contract?"), (0.4,)),
    Spec("i45", HELP, ("I need to", "change the delivery address for", "my last order."), (0.5, 0.8)),
    Spec("i46", PHONE, ("It's two zero two,", "five five five,", "zero one four three."), (0.6, 0.5)),
    # no lexical cue: the words before the pause are a complete clause
    Spec("i47", HELP, ("I want to cancel my order", "because it is late."), (0.6,)),
    Spec("i48", HELP, ("My internet is slow", "in the evenings."), (0.5,)),
    Spec("i49", "What seems to be the problem?", ("The printer does not work", "since the update."), (0.8,)),
    Spec("i50", HELP, ("I'd like to pay my bill", "with a different card."), (0.4,)),
    Spec("i51", "When would you like to come in?", ("Tomorrow", "after lunch."), (0.7,)),
    Spec("i52", HELP, ("I got a letter from you", "about a missed payment."), (0.9,)),
    Spec("i53", HELP, ("I need a new card", "for my wife."), (0.3,)),
    # --- held out: written after the detector's waits were tuned on the items above, scored apart ---
    Spec("h01", HELP, ("I'd like to report a power outage on my street.",)),
    Spec("h02", "Would you like me to repeat that?", ("No, I got it.",)),
    Spec("h03", "What is your last name?", ("It's Miller.",)),
    Spec("h04", HELP, ("How much does the basic plan cost?",)),
    Spec("h05", "Which store did you visit?", ("The one on Main Street.",)),
    Spec("h06", HELP, ("My card was stolen last night.",)),
    Spec("h07", "Can I put you on hold for a moment?", ("Sure, no problem.",)),
    Spec("h08", PHONE, ("Four one five, five five five, two six eight one.",)),
    Spec("h09", HELP, ("I'd like to return a pair of headphones.",)),
    Spec("h10", "How did you hear about us?", ("A friend told me.",)),
    Spec("h11", HELP, ("I just moved and", "I need to transfer my service."), (0.7,)),
    Spec("h12", PHONE, ("Four one five,", "five five five, two six eight one."), (0.6,)),
    Spec("h13", HELP, ("Can I get a", "quote for car insurance?"), (0.5,)),
    Spec("h14", HELP, ("I was wondering whether", "you have any openings this week."), (0.8,)),
    Spec("h15", "Which store did you visit?", ("The one near the", "train station."), (0.4,)),
    Spec("h16", HELP, ("My son is sick so", "we need to cancel our visit."), (0.9,)),
    Spec("h17", HELP, ("The reason I'm calling is", "my bill went up again."), (0.6,)),
    Spec("h18", HELP, ("I need to speak to someone", "about my mortgage."), (0.7,)),
    Spec("h19", HELP, ("My flight was cancelled", "and I need a new one."), (0.5,)),
    Spec("h20", "What time works for you?", ("Any time after", "five in the evening."), (0.3,)),
)
# fmt: on


HELD_OUT = frozenset(s.id for s in SPECS if s.id.startswith("h"))


@dataclass
class Item:
    spec: Spec
    pcm: bytes = field(repr=False)  # 8 kHz PCM16 after the G.711 round trip
    part_ends: list[float]  # seconds: when each part's speech ends
    pauses: list[tuple[float, float]]  # (start, end) of each mid-sentence pause

    @property
    def complete_only(self) -> bool:
        return self.spec.complete_only

    @property
    def speech_end(self) -> float:
        return self.part_ends[-1]

    def text_at(self, t: float) -> list[tuple[float, str]]:
        """(time, text) of the parts whose speech ended by ``t``."""
        return [(end, text) for end, text in zip(self.part_ends, self.spec.parts, strict=True) if end <= t]


def _trim(pcm: np.ndarray, rate: int) -> np.ndarray:
    step = rate // 100
    n = len(pcm) // step
    if n == 0:
        return pcm
    frames = pcm[: n * step].astype(np.float64).reshape(n, step) / 32768.0
    loud = np.nonzero(20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9) > -45)[0]
    if loud.size == 0:
        return pcm[:0]
    return pcm[loud[0] * step : (loud[-1] + 1) * step]


def _synthesize(text: str) -> np.ndarray:
    from piper import SynthesisConfig

    from voipbin.speech.audio import resample
    from voipbin.speech.tts_piper import piper_voice

    voice = piper_voice()
    cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(text, cfg))
    return _trim(np.frombuffer(resample(pcm, voice.config.sample_rate, RATE), dtype=np.int16), RATE)


def _g711(pcm: np.ndarray) -> np.ndarray:
    from voipbin.media.g711 import ulaw_decode, ulaw_encode

    return np.frombuffer(ulaw_decode(ulaw_encode(pcm)), dtype=np.int16)


def _digest() -> str:
    blob = json.dumps([(s.id, s.question, s.parts, s.pauses) for s in SPECS]).encode()
    return hashlib.sha256(blob + b"piper-noise0-whole-v2").hexdigest()[:12]


def cache_dir() -> Path:
    return ROOT / "var" / "cache" / "turnset" / _digest()


def _split_points(full: np.ndarray, spec: Spec) -> list[int]:
    """Sample offsets in ``full`` (the whole sentence) where each pause goes.

    Piper gives no word timings, so each boundary is estimated from the length of the prefix
    synthesised alone (a little long: it ends with sentence-final lengthening), then moved to the
    quietest 10 ms within -200..+40 ms of that estimate (the gap between two words).
    """
    step = RATE // 100
    points = []
    for k in range(1, len(spec.parts)):
        est = len(_synthesize(" ".join(spec.parts[:k])))
        lo, hi = max(step, est - RATE // 5), min(len(full) - step, est + RATE // 25)
        starts = list(range(lo, hi, step // 2))
        energy = [float(np.mean(full[s : s + step].astype(np.float64) ** 2)) for s in starts]
        points.append(starts[int(np.argmin(energy))] + step // 2)
    return points


def _build_item(spec: Spec, seed: int) -> tuple[np.ndarray, list[float], list[tuple[float, float]]]:
    """The sentence is synthesised whole (so the words before a pause keep their non-final
    prosody, as a speaker who pauses mid-sentence does), then cut at word gaps for the pauses."""
    rng = np.random.default_rng(seed)
    full = _synthesize(" ".join(spec.parts))
    cuts = [0, *_split_points(full, spec), len(full)]
    chunks = [np.zeros(int(LEAD_SECS * RATE), dtype=np.int16)]
    t = LEAD_SECS
    ends: list[float] = []
    pauses: list[tuple[float, float]] = []
    for i in range(len(spec.parts)):
        speech = full[cuts[i] : cuts[i + 1]]
        chunks.append(speech)
        t += len(speech) / RATE
        ends.append(round(t, 4))
        gap = spec.pauses[i] if i < len(spec.pauses) else TAIL_SECS
        if i < len(spec.pauses):
            pauses.append((round(t, 4), round(t + gap, 4)))
        chunks.append(np.zeros(int(gap * RATE), dtype=np.int16))
        t += int(gap * RATE) / RATE
    audio = np.concatenate(chunks).astype(np.float64)
    audio += rng.normal(0.0, 32768 * 10 ** (-60 / 20), audio.size)  # -60 dBFS line noise
    return _g711(np.clip(audio, -32768, 32767).astype(np.int16)), ends, pauses


def load_set(specs: tuple[Spec, ...] = SPECS) -> list[Item]:
    """The labelled items (synthesised on first use, then read from the cache)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers share the cache: one builds it, the others wait for it and then read it.
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _load(folder, specs)


def _load(folder: Path, specs: tuple[Spec, ...]) -> list[Item]:
    items = []
    for n, spec in enumerate(specs):
        wav, meta = folder / f"{spec.id}.wav", folder / f"{spec.id}.json"
        if not (wav.exists() and meta.exists()):
            pcm, ends, pauses = _build_item(spec, seed=n)
            tmp = wav.with_suffix(".tmp")
            with wave.open(str(tmp), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes(pcm.tobytes())
            tmp.replace(wav)
            meta.write_text(json.dumps({"part_ends": ends, "pauses": pauses}))
        with wave.open(str(wav), "rb") as w:
            pcm_bytes = w.readframes(w.getnframes())
        info = json.loads(meta.read_text())
        items.append(Item(spec, pcm_bytes, info["part_ends"], [tuple(p) for p in info["pauses"]]))
    return items


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "src")]
    out = load_set()
    print(f"{len(out)} items in {cache_dir()}")
