"""Follow-ups over the bundled article: what "it" or "he" stands for is not an answer to the follow-up."""

from __future__ import annotations

import pytest

HISTORIES = [
    ("Which company does Vincent Lo chair?", "Shui On Group.", "What kind of company is it?", "shui on group"),
    ("Who is the chairman of Shui On Group?", "Vincent Lo.", "What kind of company does he chair?", "shui on group"),
    ("What is the University of Hong Kong preparing to establish?", "A global innovation hub.", "Who is its president?",
     "university of hong kong"),
]


@pytest.mark.parametrize(("earlier", "reply", "follow_up", "referent"), HISTORIES)
def test_a_follow_up_is_not_answered_with_what_it_refers_to(article_engine, earlier: str, reply: str, follow_up: str, referent: str) -> None:  # noqa: ANN001
    history = [{"role": "user", "content": earlier}, {"role": "assistant", "content": reply}]
    answer = article_engine.ask(follow_up, history)
    said = answer.answer.removesuffix("[1]").strip(" .").lower()
    assert said != referent, f"{follow_up!r} was answered with the thing it refers to: {answer.answer!r}"
    assert answer.refused or answer.citations


def test_the_previous_question_does_not_hide_the_answer_it_asks_for(article_engine) -> None:  # noqa: ANN001
    history = [{"role": "user", "content": "Who is the president of the University of Hong Kong?"},
               {"role": "assistant", "content": "Zhang Xiang."}]
    answer = article_engine.ask("What does he say is the key to advancing science and technology?", history)
    assert not answer.refused and "basic research" in answer.answer.lower()


def test_what_kind_of_thing_it_is_reads_the_words_before_the_name_the_reply_gave(article_engine) -> None:  # noqa: ANN001
    """The name "it" stands for is in the earlier reply, not in the earlier question: the conversation's names count."""
    history = [{"role": "user", "content": "Which company does Vincent Lo chair?"}, {"role": "assistant", "content": "Shui On Group."}]
    answer = article_engine.ask("What kind of company is it?", history)
    assert not answer.refused and "real estate giant" in answer.answer, answer.answer
    assert answer.citations and "real estate giant Shui On Group" in answer.citations[0].quote
