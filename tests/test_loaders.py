from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import ROOT
from ingest.loaders import LoadError, load_document
from tests.conftest import ARTICLE

# A minimal one-page PDF with a text layer (hand-made so the test needs no PDF writer).
def make_pdf(path: Path, text: bytes = b"Quarterly revenue rose by 12 percent.") -> Path:
    """A one-page PDF whose text layer is `text` (a PDF string literal: octal escapes such as \\007 allowed)."""
    content = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def test_article_header_becomes_metadata() -> None:
    meta = load_document(ARTICLE, ROOT).metadata
    assert meta["title"] == "Shanghai, Hong Kong Draw Closer on Scientific, Technological Innovation"
    assert meta["author"] == "Dou Shicong"
    assert meta["date"] == "2024-04-29"
    assert meta["publisher"] == "Yicai"
    assert meta["source"] == "data/yicai-2024-04-29-shanghai-hong-kong-innovation.txt"


def test_text_is_the_file_as_read() -> None:
    assert load_document(ARTICLE, ROOT).page_content == ARTICLE.read_text(encoding="utf-8")


def test_html_keeps_visible_text_only(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Lab news</title><style>p{color:red}</style></head><body>"
        "<h1>Heading</h1><p>Visible paragraph.</p><script>alert('x')</script><noscript>no js</noscript></body></html>"
    )
    doc = load_document(page, ROOT)
    assert doc.metadata["title"] == "Lab news"
    assert "Visible paragraph." in doc.page_content and "Heading" in doc.page_content
    assert "alert" not in doc.page_content and "color:red" not in doc.page_content and "no js" not in doc.page_content


def test_markdown_title_is_first_heading(tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("Intro line.\n\n## The Real Title\n\nBody text.\n")
    assert load_document(note, ROOT).metadata["title"] == "The Real Title"
    plain = tmp_path / "plain.md"
    plain.write_text("No heading at all.\n")
    assert load_document(plain, ROOT).metadata["title"] == "plain"


def test_pdf_text_layer(tmp_path: Path) -> None:
    doc = load_document(make_pdf(tmp_path / "report.pdf"), ROOT)
    assert "Quarterly revenue rose by 12 percent." in doc.page_content
    assert doc.metadata["title"] == "report" and doc.metadata["format"] == "pdf"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n\t\n", "empty"),
        ("latin1.txt", "caf\u00e9 cr\u00e8me".encode("latin-1"), "not valid UTF-8"),
        ("binary.txt", b"\x00\x01\x02abc", "binary"),
        ("table.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "not a readable PDF"),
    ],
)
def test_bad_files_raise_one_clear_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as caught:
        load_document(path, ROOT)
    message = str(caught.value)
    assert reason in message and str(path) in message and "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such file"):
        load_document(tmp_path / "nope.txt", ROOT)


def test_pdf_control_characters_become_spaces(tmp_path: Path) -> None:
    doc = load_document(make_pdf(tmp_path / "bell.pdf", b"Revenue\\007rose\\033[2Jby 12\\014percent."), ROOT)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", doc.page_content), repr(doc.page_content)
    assert doc.page_content.split() == ["Revenue", "rose", "[2Jby", "12", "percent."]


def test_html_control_characters_become_spaces(tmp_path: Path) -> None:
    page = tmp_path / "bell.html"
    page.write_text("<html><head><title>Bell\x07Report</title></head><body><p>Revenue\x07rose\x1b[2Jby 12%.</p></body></html>")
    doc = load_document(page, ROOT)
    assert doc.page_content.split() == ["Revenue", "rose", "[2Jby", "12%."] and doc.metadata["title"] == "Bell Report"
