"""Split streaming LLM text into speakable clauses.

LLM tokens arrive a few characters at a time; TTS sounds best on whole sentences but the caller
should hear the first words as early as possible. So a sentence end (``.!?`` followed by space)
always cuts, and a softer break (``,;:`` or a dash) cuts once the pending text is long enough to be
worth a synthesis request. Abbreviations ("Dr.", "e.g.") and decimals ("3.5") do not cut.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd", "no",
    "mt", "ave", "approx", "dept", "est", "fig", "u.s", "a.m", "p.m",
}  # fmt: skip
_SENTENCE_END = re.compile(r"[.!?。！？…]+[\"')\]]*\s")
_SOFT_BREAK = re.compile(r"[,;:—–]\s|\s-\s|\n")
_BREAK_AT_END = re.compile(r"(?:[.!?。！？…]+|[,;:—–])[\"')\]]*$")


class ClauseSplitter:
    """Accumulate text with :meth:`push`; get complete clauses back; :meth:`flush` returns the rest."""

    def __init__(self, min_soft_chars: int = 40, max_chars: int = 250) -> None:
        self.min_soft_chars = min_soft_chars
        self.max_chars = max_chars
        self._buf = ""

    def push(self, text: str) -> list[str]:
        self._buf += text
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            clause, self._buf = self._buf[:cut].strip(), self._buf[cut:].lstrip()
            if clause:
                out.append(clause)
        return out

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []

    @property
    def pending(self) -> str:
        return self._buf

    def take_speakable(self, min_soft_chars: int) -> list[str]:
        """An answer's first clause as soon as it can be spoken (the caller waits for it): the
        usual cuts with a lower soft-break length, or a break at the very end of the text so far
        without waiting for the next token's space — never after a digit (3.5, 1,000) or an
        abbreviation."""
        soft, self.min_soft_chars = self.min_soft_chars, min(self.min_soft_chars, min_soft_chars)
        try:
            out = self.push("")
        finally:
            self.min_soft_chars = soft
        buf = self._buf.rstrip()
        m = _BREAK_AT_END.search(buf)
        if out or m is None or m.start() == 0 or buf[m.start() - 1].isdigit():
            return out
        if (buf[m.start()] in ",;:—–" and m.end() < min_soft_chars) or self._is_false_end(buf, m.start()):
            return []
        return self.flush()

    def _find_cut(self) -> int | None:
        # The earliest acceptable cut wins, so streamed and whole text split the same way.
        buf = self._buf
        cuts = []
        for m in _SENTENCE_END.finditer(buf):
            if not self._is_false_end(buf, m.start()):
                cuts.append(m.end())
                break
        for m in _SOFT_BREAK.finditer(buf):
            if m.end() >= self.min_soft_chars or buf[m.start()] == "\n":
                cuts.append(m.end())
                break
        if cuts:
            return min(cuts)
        if len(buf) > self.max_chars:  # runaway text without punctuation: cut at a space
            space = buf.rfind(" ", 0, self.max_chars)
            return space + 1 if space > 0 else self.max_chars
        return None

    @staticmethod
    def _is_false_end(buf: str, pos: int) -> bool:
        if buf[pos] != ".":
            return False
        word = re.search(r"([\w.]+)$", buf[:pos])
        if word is None:
            return False
        return word.group(1).lower() in _ABBREVIATIONS


def split_clauses(text: str, min_soft_chars: int = 40) -> list[str]:
    """Split a complete text into clauses (same rules as streaming)."""
    s = ClauseSplitter(min_soft_chars=min_soft_chars)
    return s.push(text + " ") + s.flush()
