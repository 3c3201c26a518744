"""HTML bodies made safe to show (nh3: an allow-list of tags and attributes, links marked noopener) and a plain-text
version of HTML for messages that have no text part."""

from __future__ import annotations

import html
import re

import nh3

# no images or styles: a remote image is a read receipt for the sender, a style can hide or fake content
TAGS = frozenset({"a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "li", "ol",
                  "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "u",
                  "ul"})
ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
_BLOCK_END = re.compile(r"(?i)<\s*(br|/p|/div|/li|/tr|/h[1-6]|/blockquote|hr)\b[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def sanitise_html(markup: str) -> str:
    """markup with only the allowed tags and attributes; scripts, styles, handlers and other URL schemes gone."""
    return nh3.clean(markup, tags=set(TAGS), attributes={k: set(v) for k, v in ATTRIBUTES.items()},
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow",
                     strip_comments=True)


def html_to_text(markup: str) -> str:
    """The readable text of (sanitised) HTML: line breaks at block ends, tags dropped, entities decoded."""
    marked = _BLOCK_END.sub("\n", markup)
    bare = nh3.clean(marked, tags=set())
    text = html.unescape(bare)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
