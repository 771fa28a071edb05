"""Stage "language": which language a question is asked in, and the fixed texts of the answer in that language.

The documents are read as they are; only the words the service itself writes (the refusal, the progress line) follow
the question's language. Chinese is told apart as Simplified or Traditional by its characters (hanzidentifier);
other languages by their script, and Latin-script languages by a character n-gram classifier (py3langid) that must
be sure: of 7,491 English questions (SQuAD and the gold sets) it put one in another language at 0.9 or above.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

ENGLISH = "en"
SIMPLIFIED = "zh-hans"
TRADITIONAL = "zh-hant"
SURE = 0.95
"""Least probability for calling a Latin-script question other than English."""

NAMES = {
    "en": "English", SIMPLIFIED: "Chinese", TRADITIONAL: "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian",
    "uk": "Ukrainian", "ar": "Arabic", "he": "Hebrew", "el": "Greek", "th": "Thai", "hi": "Hindi", "fr": "French",
    "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "tr": "Turkish",
    "vi": "Vietnamese", "id": "Indonesian", "sv": "Swedish",
}
_SCRIPTS = {  # the first word of a letter's Unicode name -> the language its script most likely means here
    "CJK": SIMPLIFIED, "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CYRILLIC": "ru", "ARABIC": "ar",
    "HEBREW": "he", "GREEK": "el", "THAI": "th", "DEVANAGARI": "hi",
}


@dataclass(frozen=True)
class Texts:
    """What the service itself says, in one language."""

    refusal: str
    looking: str


TEXTS = {
    ENGLISH: Texts(refusal="The source does not say.", looking="Looking in the source…"),
    SIMPLIFIED: Texts(refusal="资料中没有提到。", looking="正在资料中查找…"),
    TRADITIONAL: Texts(refusal="資料中沒有提到。", looking="正在資料中查找…"),
}


def texts(language: str) -> Texts:
    """The fixed texts in the question's language; English for languages without a translation."""
    return TEXTS.get(language, TEXTS[ENGLISH])


def name(language: str) -> str:
    return NAMES.get(language, f"this language ({language})")


def detect(text: str) -> str:
    """'en', 'zh-hans', 'zh-hant', or another ISO 639-1 code. Text with no letters, or not surely another
    language, is English."""
    scripts: dict[str, int] = {}
    for char in text:
        if char.isalpha():
            script = unicodedata.name(char, "").split(" ")[0]
            scripts[script] = scripts.get(script, 0) + 1
    if not scripts:
        return ENGLISH
    kana = scripts.get("HIRAGANA", 0) + scripts.get("KATAKANA", 0)
    if scripts.get("CJK") and not kana:
        return _chinese(text)
    script, count = max(scripts.items(), key=lambda item: item[1])
    if script != "LATIN" and count * 2 >= sum(scripts.values()):
        return "ja" if kana else _SCRIPTS.get(script, "und")
    language, probability = _identifier().classify(text)
    return language if language != ENGLISH and probability >= SURE and len(text.split()) >= 3 else ENGLISH


def _chinese(text: str) -> str:
    import hanzidentifier

    return TRADITIONAL if hanzidentifier.identify(text) == hanzidentifier.TRADITIONAL else SIMPLIFIED


@lru_cache(maxsize=1)
def _identifier():  # noqa: ANN202 - py3langid's own class
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
