"""Every Python and shell block of the README and the docs site runs as written (docs_blocks has the rules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import ROOT, block_problems, doc_pages, page_blocks

PAGES = doc_pages()
RUNNABLE = [page for page in PAGES if any(block.runs or block.directive == "file" for block in page_blocks(page))]


def test_every_block_is_marked():
    problems = [problem for page in PAGES for block in page_blocks(page) for problem in block_problems(block)]
    assert not problems, "\n".join(problems)


def test_block_inventory(capsys):
    """Counts for the record: runnable blocks dominate, and every illustrative one carries a reason."""
    blocks = [block for page in PAGES for block in page_blocks(page)]
    run = [b for b in blocks if b.runs]
    illustrative = [b for b in blocks if b.directive == "illustrative"]
    with capsys.disabled():
        print(f"\ndocs: {len(PAGES)} pages, {len(blocks)} blocks: {len(run)} run, {len(illustrative)} illustrative")
    assert len(run) > 2 * len(illustrative)


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run(page: Path, tmp_path: Path):
    blocks = [{"where": b.where, "language": b.language, "code": b.code, "directive": b.directive,
               "argument": b.argument} for b in page_blocks(page) if b.runs or b.directive == "file"]  # fmt: skip
    for name in ("examples", "paper_figs"):  # what the pages' commands read
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "BSP_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "docs_driver.py"), "blocks.json"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
