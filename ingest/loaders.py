"""Read source files into LangChain `Document`s: the text exactly as chunk offsets will refer to it, plus metadata."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from langchain_core.documents import Document

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")

# The article format of the bundled corpus: a title line, an author line, then labelled lines such as
# "DATE:  Apr 29 2024" and "/ SOURCE:  Yicai".
LABELLED_LINE = re.compile(r"^\W*(DATE|SOURCE|AUTHOR|BY)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""Control characters (NUL included), line separators and lone surrogates (undecodable bytes of a file name, JSON
"\ud800" escapes): in file names they are escaped, in questions they become spaces."""
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters but tab and newline, which PDF text layers and HTML carry (bells, escapes, form feeds): they
become spaces in text extracted from those formats."""


def printable_path(path: Path | str) -> str:
    """The path on one line: control characters and undecodable bytes escaped (`new\\nline.txt`, `caf\\udce9.txt`)."""
    return UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), str(path))


class LoadError(Exception):
    """A source file that cannot be ingested; the message names the file and the reason, on one line."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{printable_path(path)}: {reason}")
        self.path = str(path)
        self.reason = reason


def source_id_for(path: Path, root: Path) -> str:
    """A stable id for a file: its path relative to the project root when inside it, else its absolute path."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return resolved.as_posix()


def load_document(path: Path, root: Path) -> Document:
    """Load one file by its extension; raise `LoadError` with a one-line reason when it cannot be read."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise LoadError(path, "no such file or folder")
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(path, f"unsupported file type '{suffix or '(none)'}'; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    source = source_id_for(path, root)
    if re.search("[\ud800-\udfff]", source):  # a name that is not UTF-8 comes as lone surrogates; the store takes UTF-8
        raise LoadError(path, "the file name is not valid UTF-8; rename the file")
    if suffix == ".pdf":
        text, metadata = _read_pdf(path)
    else:
        raw = _decode(path)
        if suffix in (".html", ".htm"):
            text, metadata = _read_html(raw)
        elif suffix == ".md":
            text, metadata = raw, _markdown_metadata(raw)
        else:
            text, metadata = raw, _article_metadata(raw)
    if suffix in (".pdf", ".html", ".htm"):  # extracted text: offsets refer to it, not to the file, so it may change
        text = CONTROL.sub(" ", text)
        metadata = {key: CONTROL.sub(" ", value).strip() for key, value in metadata.items()}
    if not text.strip():
        raise LoadError(path, "the file is empty" if suffix != ".pdf" else "the PDF has no text layer")
    metadata.setdefault("title", path.stem)
    metadata["source"] = source
    metadata["format"] = suffix.lstrip(".")
    return Document(page_content=text, metadata=metadata)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        raise LoadError(path, "the file holds binary data (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LoadError(path, f"the file is not valid UTF-8 text (undecodable byte at offset {err.start})") from None


def _article_metadata(text: str) -> dict[str, str]:
    """Header lines (up to the first blank line) of a plain-text article: title, author, date, publisher."""
    header = text.lstrip().split("\n\n", 1)[0].splitlines()
    header = [line.strip() for line in header if line.strip()]
    if not header:
        return {}
    metadata = {"title": header[0]}
    labelled = {}
    unlabelled = []
    for line in header[1:]:
        match = LABELLED_LINE.match(line)
        if match:
            labelled[match.group(1).upper()] = match.group(2)
        else:
            unlabelled.append(line)
    if not labelled:  # not an article header: only the first line is taken, as the title
        return metadata
    if "AUTHOR" in labelled or "BY" in labelled:
        metadata["author"] = labelled.get("AUTHOR") or labelled["BY"]
    elif unlabelled:
        metadata["author"] = unlabelled[0]
    if "SOURCE" in labelled:
        metadata["publisher"] = labelled["SOURCE"]
    if "DATE" in labelled:
        metadata["date"] = iso_date(labelled["DATE"])
    return metadata


def iso_date(value: str) -> str:
    for fmt in ("%b %d %Y", "%B %d %Y", "%Y-%m-%d", "%d %B %Y", "%d %b %Y"):
        try:
            return datetime.strptime(" ".join(value.split()), fmt).date().isoformat()
        except ValueError:
            continue
    return value


def _markdown_metadata(text: str) -> dict[str, str]:
    match = _MD_HEADING.search(text)
    return {"title": match.group(1)} if match else {}


def _read_html(raw: str) -> tuple[str, dict[str, str]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    title_tag = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head", "svg", "iframe"]):
        tag.decompose()
    heading = soup.find(["h1", "h2"])
    # One line per block of visible text; blank lines between blocks keep paragraphs apart for the chunker.
    lines = [" ".join(s.split()) for s in soup.get_text("\n").splitlines()]
    text = "\n\n".join(line for line in lines if line)
    title = title_tag or (heading.get_text(" ", strip=True) if heading else "")
    return text, ({"title": title} if title else {})


def _read_pdf(path: Path) -> tuple[str, dict[str, str]]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as err:
        raise LoadError(path, f"not a readable PDF ({type(err).__name__})") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    return text, ({"title": info_title.strip()} if info_title.strip() else {})
