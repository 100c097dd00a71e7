"""MkDocs hook: the site renders offline, with nothing fetched at view time.

- Formulas (``$...$`` and ``$$...$$`` in the pages, marked by pymdownx.arithmatex, and the
  ``:math:`` roles and ``.. math::`` directives of the API docstrings) are converted to MathML when
  the site is built; browsers draw MathML themselves, so no MathJax is loaded from a CDN.
- The reST roles of the docstrings (``:class:``, ``:func:``, ``:mod:``, ``:meth:``, ``:attr:``,
  ``:data:``) become code spans; ``~a.b.C`` shows as ``C``, as in Sphinx.

A formula latex2mathml cannot convert stays as its LaTeX source in a code span.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_ROLE = re.compile(r":(class|func|mod|meth|attr|data|obj|exc):<code>(.*?)</code>", re.S)
_MATH_ROLE = re.compile(r":math:<code>(.*?)</code>", re.S)
_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)
_DIRECTIVE = re.compile(r"\.\. math::\s*(.*?)(?=</p>)", re.S)


def mathml(latex: str, display: str = "inline") -> str:
    """The MathML of ``latex`` (HTML-escaped as it comes from the page), or its source as code."""
    source = html.unescape(latex).strip()
    try:
        return convert(source, display=display)
    except Exception:  # an unsupported macro: show the source rather than fail the build
        return f"<code>{html.escape(source)}</code>"


def _role(match: re.Match) -> str:
    target = html.unescape(match.group(2))
    shown = target[1:].rsplit(".", 1)[-1] if target.startswith("~") else target
    return f"<code>{html.escape(shown)}</code>"


def render(content: str) -> str:
    content = _BLOCK.sub(lambda m: mathml(m.group(1), "block"), content)
    content = _INLINE.sub(lambda m: mathml(m.group(1)), content)
    content = _MATH_ROLE.sub(lambda m: mathml(m.group(1)), content)
    content = _DIRECTIVE.sub(lambda m: mathml(m.group(1), "block"), content)
    return _ROLE.sub(_role, content)


def on_page_content(html_content: str, **kwargs) -> str:
    return render(html_content)
