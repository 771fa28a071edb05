"""Stage "translate": a Chinese question read as English words (CC-CEDICT, jieba, pypinyin); no model involved."""

from __future__ import annotations

from app import translate


def corpus_of(*words: str):  # noqa: ANN201 - the `corpus_uses` callable
    return set(words).__contains__


def test_the_question_word_leads_and_the_sense_the_corpus_uses_is_taken() -> None:
    assert translate.gloss("香港大学校长是谁？", corpus_of("president")) == "who is the Hong Kong university president?"
    assert "headmaster" in translate.gloss("香港大学校长是谁？", corpus_of("headmaster"))


def test_traditional_and_simplified_read_alike() -> None:
    uses = corpus_of("president", "director", "commission")
    assert translate.gloss("香港大學校長是誰？", uses) == translate.gloss("香港大学校长是谁？", uses)
    assert translate.simplified("滬港科技創新對話") == "沪港科技创新对话"


def test_personal_names_are_spelt_in_pinyin_and_latin_words_stay() -> None:
    assert "Zhang Xiang" in translate.gloss("张翔认为推动科技进步的关键是什么？")
    assert "Sun Dong" in translate.gloss("孙东说了什么？")
    gloss = translate.gloss("Shui On集团的主席是谁？", corpus_of("chairman", "group"))
    assert "Shui On" in gloss and "chairman" in gloss and gloss.startswith("who")


def test_figures_and_kinds_of_question_survive() -> None:
    assert translate.gloss("过去五年，两地科学家合作发表了多少篇论文？").startswith("how many")
    assert translate.gloss("沪港科技创新对话是在哪一天举行的？").startswith("what day")
    assert "2024" in translate.gloss("2024年沪港合作周在哪里举行？")


def test_dictionary_notes_and_chinese_never_reach_the_gloss() -> None:
    assert translate._senses("(used in the names of grand buildings such as 大廈|大厦)/") == []
    assert translate._senses("to believe; to think/CL:個|个[ge4]/") == ["believe", "think"]
    assert translate._senses("short name for Shanghai/") == ["Shanghai"]


def test_questions_about_the_document_become_the_english_the_document_facts_read() -> None:
    assert translate.gloss("這篇文章是誰寫的？") == "Who wrote the article?"
    assert translate.gloss("这篇报道是哪家媒体刊发的？") == "Who published the article?"
    assert translate.gloss("這篇文章是什麼時候發表的？") == "When was the article published?"
    assert translate.gloss("这篇文章的编辑是谁？") == "Who is the editor of the article?"
    assert translate.gloss("本文的标题是什么？") == "What is the title of the article?"
    assert translate.gloss("这篇文章提到了哪些领域？", corpus_of("mention")).startswith("which this article")


def test_classifiers_go_but_units_stay() -> None:
    assert "dollar" in translate.gloss("以美元计算，两座城市之间的技术交易总值多少？")
    assert "sheet" not in translate.gloss("这篇文章提到了哪些领域？")


def test_the_traditional_spellings_of_question_words_are_read() -> None:
    assert translate.gloss("瑞安集團主要從事甚麼行業？").startswith("what ")
    assert translate.gloss("張翔認為推動科技進步的關鍵是甚麼？").startswith("what is the Zhang Xiang")
    assert translate.gloss("哈羅德二世死在哪裡？").startswith("where ")
    assert translate.gloss("上海中心大廈有多高？").startswith("how tall ")
