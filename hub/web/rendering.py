"""Turning catalog text into safe HTML: README Markdown (sanitised) and highlighted YAML."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import YamlLexer

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table").enable("strikethrough")
_formatter = HtmlFormatter(cssclass="highlight", nowrap=False)
_ALLOWED_TAGS = nh3.ALLOWED_TAGS | {
    "details",
    "summary",
    "pre",
    "code",
    "span",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
_ALLOWED_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "code": {"class"},
    "blockquote": {"class"},
    "span": {"class"},
    "img": {"src", "alt", "title", "width", "height"},
    "a": {"href", "title"},
}


# GitHub's alert syntax, "> [!WARNING]" as the first line of a quote, which catalog READMEs use.
_ALERT = re.compile(r"<blockquote>\s*<p>\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*", re.IGNORECASE)


def _alert(match: re.Match[str]) -> str:
    kind = match.group(1).lower()
    return f'<blockquote class="alert alert-{kind}"><p><strong>{kind.title()}</strong><br>'


def readme_html(markdown: str) -> Markup:
    """Render a catalog README; scripts, event handlers and javascript: links are removed."""
    html = _ALERT.sub(_alert, _markdown.render(markdown))
    clean = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)


def yaml_html(text: str) -> Markup:
    """Highlight YAML; Pygments escapes the text."""
    return Markup(highlight(text, YamlLexer(), _formatter))


def highlight_css() -> str:
    return _formatter.get_style_defs(".highlight")
