"""The documentation: every ```python block runs, and the site builds with ``mkdocs build --strict``.

The blocks of one page run in order in one namespace, as a reader would paste them, in a fresh
temporary working directory (examples may write files there). Blocks that are not meant to run
are fenced as ```text or ```bash.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
#: Modules an example may use that are optional extras (``[dev]``); without them the page is skipped.
OPTIONAL = {"pandas"}


def python_blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


PAGES = sorted(p for p in DOCS.rglob("*.md") if python_blocks(p))


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(python_blocks(page), start=1):
        try:
            exec(compile(code, f"{page.relative_to(ROOT)} (python block {i})", "exec"), namespace)
        except ModuleNotFoundError as exc:
            if exc.name in OPTIONAL:
                pytest.skip(f"{exc.name} is not installed")
            raise


def test_every_method_page_has_one_example():
    pages = sorted((DOCS / "methods").glob("*.md"))
    assert pages, "no method pages"
    counts = {p.name: len(python_blocks(p)) for p in pages}
    assert all(n == 1 for n in counts.values()), counts


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").exists()
    pages = {p: p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.html")}
    assert not [p for p, text in pages.items() if "mathjax" in text.lower() or "unpkg.com" in text]  # offline
    tca = pages[tmp_path / "site" / "methods" / "tca" / "index.html"]
    assert "<math" in tca and ":math:<code>" not in tca and ":class:<code>" not in tca


def test_the_math_hook_turns_formulas_into_mathml_and_roles_into_code():
    import importlib.util

    pytest.importorskip("latex2mathml")
    spec = importlib.util.spec_from_file_location("render_math", DOCS / "hooks" / "render_math.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = (
        "<p>See :class:<code>~transferkit.methods.dann.DANN</code> and :func:<code>transferkit.select</code>: "
        ':math:<code>\\mu &gt; 0</code>, <span class="arithmatex">\\(x^2\\)</span>.</p>'
        '<div class="arithmatex">\\[\\frac{a}{b}\\]</div><p>.. math:: \\sum_i w_i</p>'
    )
    out = hook.render(page)
    assert "<code>DANN</code>" in out and "<code>transferkit.select</code>" in out
    assert out.count("<math") == 4 and out.count('display="block"') == 2 and "<mfrac>" in out
    assert ":math:" not in out and "arithmatex" not in out and ".. math::" not in out
