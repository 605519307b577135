"""Find and run the fenced code blocks of the README and the docs site (``tests/test_docs.py`` drives it).

Rules a page follows, checked by the tests:

- every fenced block names its language;
- ``python`` and ``bash`` blocks run, in page order, in one fresh working directory per page (``examples/``
  and ``paper_figs/`` are linked into it, so the paths the text uses work); Python blocks of a page share
  one namespace, as in a notebook;
- a block preceded by ``<!-- docs: illustrative REASON -->`` is not run (a GPU, a cluster, hours of
  training); it is counted, and the reason is required;
- a block preceded by ``<!-- docs: file PATH -->`` is written to ``PATH`` in the working directory, so the
  YAML a page shows is the file its next command runs;
- ``console``/``text``/``yaml``/``json``/``verilog`` blocks are shown, not run (transcripts and formats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_LANGUAGES = ("python", "bash")
SHOWN_LANGUAGES = ("console", "text", "yaml", "json", "verilog", "csv")
_FENCE = re.compile(r"^(`{3,})(\S*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*docs:\s*(illustrative|file)\b\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code and what the page says to do with it."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    directive: str | None = None  # "illustrative" or "file"
    argument: str = ""  # the illustrative reason or the file path

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES and self.directive != "illustrative"


def doc_pages() -> list[Path]:
    """The README and every page of the docs site (generated API HTML excluded)."""
    return [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "api" not in p.parts)]


def page_blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order; an unclosed fence is an error naming its line."""
    blocks, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, language, start = opening.group(1), opening.group(2), i
        directive = argument = None
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marked = _DIRECTIVE.match(previous.strip())
        if marked:
            directive, argument = marked.group(1), marked.group(2)
        i += 1
        while i < len(lines) and lines[i].rstrip() != fence:
            i += 1
        if i == len(lines):
            raise ValueError(f"{page}:{start + 1}: code fence never closed")
        code = "\n".join(lines[start + 1:i]) + "\n"
        blocks.append(Block(page, start + 1, language, code, directive, argument or ""))
        i += 1
    return blocks


def block_problems(block: Block) -> list[str]:
    """What is wrong with how a block is marked (empty when nothing)."""
    if not block.language:
        return [f"{block.where}: fenced block without a language (python, bash, or one of {SHOWN_LANGUAGES})"]
    if block.language not in RUN_LANGUAGES + SHOWN_LANGUAGES:
        return [f"{block.where}: language {block.language!r}; allowed: {RUN_LANGUAGES + SHOWN_LANGUAGES}"]
    if block.directive == "illustrative" and not block.argument:
        return [f"{block.where}: an illustrative block must say why it is not run"]
    if block.directive == "file" and not block.argument:
        return [f"{block.where}: `docs: file` needs the path to write"]
    return []
