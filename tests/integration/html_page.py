"""A page's HTML as a small tree (the standard library's parser), for checks over every page:
its title, its ids, its tables, the text a person sees."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
UNSEEN = frozenset({"script", "style", "title", "template"})  # text no one reads on the page


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def iter(self, tag: str | None = None) -> Iterator[Element]:
        """This element and every one inside it (of `tag`, if given), in document order."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter(tag)

    def own(self, tag: str) -> Iterator[Element]:
        """Elements of `tag` inside this one, but not inside a nested element of the same tag
        (a table's rows, not those of a table in one of its cells)."""
        for child in self.children:
            if isinstance(child, Element):
                if child.tag == tag:
                    yield child
                elif child.tag != self.tag:
                    yield from child.own(tag)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def visible_text(self) -> str:
        if self.tag in UNSEEN:
            return ""
        return "".join(c if isinstance(c, str) else c.visible_text for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        # An end tag closes its element and any left open inside it (an <option> without </option>).
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def titles(html: str) -> list[str]:
    """The raw text of every <title>: read from the source, since a title left open swallows
    the markup after it, which a parser would turn into elements."""
    return re.findall(r"<title>(.*?)</title>", html, re.DOTALL | re.IGNORECASE)
