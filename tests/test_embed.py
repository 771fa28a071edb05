"""The script-tag launcher (/embed.js), conversations kept across a reload, keyboard use, dark mode and axe-core, in
real headless Chromium against the session's app (two questions in all, to keep the file short)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import pytest

from config import ROOT
from tests.conftest import AppServer
from tests.test_browser import ARTIFACTS, HostPages, Recorder, browser, wait_for_final  # noqa: F401 - fixture

pytestmark = pytest.mark.slow  # real Chromium against a running app

AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
LAUNCHER_SNIPPET = ROOT.joinpath("README.md").read_text().split("<!-- launcher-snippet -->")[1].split("```html")[1].split("```")[0]
HOSTILE_CSS = "<style>* {font-family: serif !important} button, div, iframe {background: red !important; all: unset}</style>"
"""A host page's CSS that would wreck the launcher if it reached into it."""
QUESTION = "Who is the president of the University of Hong Kong?"
"""The README snippet's first starter question."""


@pytest.fixture(scope="module")
def launcher_pages(tmp_path_factory: pytest.TempPathFactory, app_server: AppServer) -> Iterator[tuple[str, str]]:
    """The README's launcher snippet in a page of an allowed origin and of another origin."""
    tmp = tmp_path_factory.mktemp("launcher")
    pages = HostPages(tmp, app_server)
    snippet = LAUNCHER_SNIPPET.replace("http://chat.example.internal:7860", app_server.url)
    (tmp / "launcher.html").write_text(
        f'<!doctype html><html lang="en"><head><title>Intranet</title>{HOSTILE_CSS}</head><body><main>'
        f'<h1>Intranet page</h1><p><a href="#top">A link before the launcher</a></p></main>{snippet}</body></html>'
    )
    yield pages.allowed.replace("index.html", "launcher.html"), pages.other.replace("index.html", "launcher.html")
    pages.close()


def launcher(page):  # noqa: ANN001, ANN201
    return page.locator("[data-rag-embed] .launcher")


def widget_frame(page):  # noqa: ANN001, ANN201
    """The widget's frame inside the launcher's panel, once its question box is there. The wait is generous: in the
    full suite the page loads while background jobs read with two copies of the model (51 s once, 7 s alone); how fast
    it loads is a benchmark's question, not this test's."""
    page.frame_locator("[data-rag-embed] iframe").locator("#rag-input textarea").wait_for(timeout=90_000)
    return next(f for f in page.frames if "/widget/" in f.url)


def focused_in_launcher(page) -> str:  # noqa: ANN001
    """Class of the element focused inside the launcher's shadow root ('' if none)."""
    return page.evaluate(
        "() => { const root = document.querySelector('[data-rag-embed]').shadowRoot;"
        " return root.activeElement ? root.activeElement.className || root.activeElement.tagName : ''; }"
    )


def serious_axe_findings(target) -> list[str]:  # noqa: ANN001
    """axe-core's serious and critical violations in a page or frame (axe-core from tests/browser, never a CDN)."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make test` runs `npm ci` in tests/browser")
    target.add_script_tag(path=str(AXE))
    violations = target.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in violations if v["impact"] in ("serious", "critical")
    ]


def test_launcher_on_an_allowed_origin_answers_keeps_the_conversation_and_closes(
    browser, launcher_pages: tuple[str, str], app_server: AppServer  # noqa: ANN001
) -> None:
    allowed, _ = launcher_pages
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    recorder = Recorder(page)
    page.goto(allowed)
    launcher(page).wait_for(timeout=15_000)
    assert page.evaluate("getComputedStyle(document.querySelector('[data-rag-embed]').shadowRoot"
                         ".querySelector('.launcher')).backgroundColor") == "rgb(29, 78, 216)", "data-color, not the host's CSS"
    assert page.locator("[data-rag-embed] iframe").count() == 0, "the widget loads on first open, not with every page"
    page.screenshot(path=str(ARTIFACTS / "launcher-closed.png"))

    launcher(page).click()
    frame = widget_frame(page)
    frame.locator("#rag-chatbot").get_by_text("Ask about the documents; answers cite their source.").wait_for(timeout=10_000)
    frame.get_by_role("button", name=f"Select example 1: {QUESTION}").click()  # data-examples
    sources = wait_for_final(frame)
    chat = frame.locator("#rag-chatbot").inner_text()
    assert "Zhang Xiang" in chat and "[1]" in chat and "[1] Shanghai, Hong Kong Draw Closer" in sources
    assert "Zhang Xiang said." in frame.locator("#rag-sources mark").first.inner_text()
    assert frame.evaluate("document.querySelector('#rag-chatbot [aria-live]').innerText").count("Zhang Xiang"), (
        "the answer is in the chat's live region, so screen readers announce it"
    )
    findings = serious_axe_findings(page) + serious_axe_findings(frame)
    page.screenshot(path=str(ARTIFACTS / "launcher-open.png"))

    frame.get_by_role("button", name="Dislike").first.click()  # the thumbs and comment box of app/ui/feedback.py
    frame.locator("#rag-feedback-comment textarea").fill("It should say which university.")
    frame.locator("#rag-feedback-send").click()
    frame.locator("#rag-feedback-comment textarea").wait_for(state="hidden", timeout=10_000)
    stored = frame.evaluate("JSON.parse(sessionStorage.getItem('rag-chat:/widget/'))")
    with contextlib.closing(sqlite3.connect(app_server.corpus.parent / "questions.sqlite")) as db:
        rated = db.execute("SELECT rating, comment FROM answered_questions WHERE id = ?", (stored["history"][-1]["id"],)).fetchone()
    assert rated == ("down", "It should say which university.")

    page.reload()
    frame = widget_frame(page)  # the panel was open, so it opens again
    frame.locator("#rag-sources mark").first.wait_for(timeout=10_000)
    assert "Zhang Xiang" in frame.locator("#rag-chatbot").inner_text(), "the conversation survives the reload"
    assert "Zhang Xiang said." in frame.locator("#rag-sources mark").first.inner_text(), "and so do its passages"
    frame.get_by_role("button", name="Clear").click()
    frame.locator("#rag-sources .rag-empty").wait_for(timeout=5_000)
    assert frame.evaluate("sessionStorage.getItem('rag-chat:/widget/')") is None, "the clear button starts afresh"
    frame.locator("#rag-input textarea").press("Escape")
    page.locator("[data-rag-embed] .panel").wait_for(state="hidden", timeout=5_000)
    assert focused_in_launcher(page) == "launcher"
    assert recorder.outside == [], f"requests left localhost: {recorder.outside}"
    assert findings == [], findings
    context.close()


def test_launcher_on_another_origin_shows_nothing_and_says_why(browser, launcher_pages: tuple[str, str]) -> None:  # noqa: ANN001
    _, other = launcher_pages
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(other)
    page.wait_for_function("() => window.__ragEmbedLoaded")
    page.wait_for_timeout(1500)
    assert page.locator("[data-rag-embed]").count() == 0 and page.locator("iframe").count() == 0
    assert any("is not in RAG_ALLOWED_ORIGINS" in e and other.rsplit("/", 1)[0] in e for e in errors), errors
    page.close()


def test_launcher_fills_a_phone_screen_and_the_chat_fits(browser, launcher_pages: tuple[str, str]) -> None:  # noqa: ANN001
    allowed, _ = launcher_pages
    page = browser.new_page(viewport={"width": 380, "height": 760})
    page.goto(allowed)
    launcher(page).click()
    frame = widget_frame(page)
    box = page.locator("[data-rag-embed] .panel").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 380, "height": 760}, box
    assert frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), "no sideways scroll"
    send = frame.locator("#rag-input button").last.bounding_box()
    assert send and send["x"] + send["width"] <= 380
    page.screenshot(path=str(ARTIFACTS / "launcher-phone.png"))
    page.locator("[data-rag-embed] .close").click()
    assert page.locator("[data-rag-embed] .panel").is_hidden() and focused_in_launcher(page) == "launcher"
    page.close()


def test_keyboard_alone_asks_reaches_the_cited_passage_and_closes(browser, launcher_pages: tuple[str, str]) -> None:  # noqa: ANN001
    allowed, _ = launcher_pages
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(allowed)
    launcher(page).wait_for(timeout=15_000)
    for _ in range(5):
        page.keyboard.press("Tab")
        if focused_in_launcher(page) == "launcher":
            break
    assert focused_in_launcher(page) == "launcher", "Tab reaches the launcher"
    page.keyboard.press("Enter")
    frame = widget_frame(page)
    frame.wait_for_function("document.activeElement && document.activeElement.matches('#rag-input textarea')", timeout=10_000)
    page.keyboard.type("How many scientists from the two cities have collaborated in the past five years?")
    page.keyboard.press("Enter")
    wait_for_final(frame)
    for _ in range(20):
        page.keyboard.press("Tab")
        if frame.evaluate("document.activeElement.matches('#rag-sources [role=region]')"):
            break
    assert frame.evaluate("document.activeElement.matches('#rag-sources [role=region]')"), "Tab reaches the cited passages"
    assert "25,000" in frame.evaluate("document.activeElement.innerText")
    page.keyboard.press("Escape")
    page.locator("[data-rag-embed] .panel").wait_for(state="hidden", timeout=5_000)
    assert focused_in_launcher(page) == "launcher", "focus is back on the launcher"
    page.close()


REFUSAL_AND_PASSAGE = (
    '<div class="rag-sources" tabindex="0" role="region" aria-label="Cited passages"><div class="rag-source">'
    '<div class="rag-meta"><b>[1] Title</b> · source.md · characters 0–9</div><div class="rag-passage">Before '
    '<mark>quoted</mark> after.</div></div></div><div class="rag-refusal"><b>Not in the source.</b> Nothing is cited.</div>'
)
"""The project's own styles of the passages panel, restored through the tab's storage so axe-core checks their
contrast without asking a question."""


def test_dark_mode_follows_the_system_and_axe_finds_nothing_serious(
    browser, launcher_pages: tuple[str, str], app_server: AppServer  # noqa: ANN001
) -> None:
    allowed, _ = launcher_pages
    findings = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme=scheme)
        page = context.new_page()
        page.goto(app_server.url + "/")
        page.evaluate(
            "(sources) => { for (const path of ['/', '/widget/']) sessionStorage.setItem('rag-chat:' + path, "
            "JSON.stringify({history: [{role: 'user', content: 'Q?'}, {role: 'assistant', content: 'A [1]'}], sources})); }",
            REFUSAL_AND_PASSAGE,
        )
        for path in ("/", "/widget/"):
            page.goto(app_server.url + path)
            page.locator("#rag-sources .rag-refusal").wait_for(timeout=15_000)
            assert page.evaluate("document.body.classList.contains('dark')") == (scheme == "dark"), "Gradio follows the system"
            findings[f"{path} {scheme}"] = serious_axe_findings(page)
        refusal = page.evaluate("getComputedStyle(document.querySelector('.rag-refusal')).backgroundColor")
        assert (refusal == "rgb(42, 26, 5)") == (scheme == "dark"), refusal
        context.close()
    page = browser.new_page(viewport={"width": 1280, "height": 860}, color_scheme="dark")
    page.goto(allowed)
    launcher(page).click()
    assert widget_frame(page).evaluate("document.body.classList.contains('dark')")
    assert page.evaluate("getComputedStyle(document.querySelector('[data-rag-embed]').shadowRoot"
                         ".querySelector('.panel')).backgroundColor") == "rgb(11, 15, 25)"
    box = widget_frame(page).locator("#rag-input textarea")
    box.fill("Who chairs Shui On Group?")
    box.press("Enter")
    widget_frame(page).locator("#rag-sources .rag-source mark").first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "launcher-dark.png"))
    page.close()
    assert not any(findings.values()), findings

