"""Sanitised HTML to plain text written for reading: headings, wrapped text, lists, links."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from newsletter.compose.textwidth import display_width, hanging, pad, wrap

WIDTH = 72
_BLOCKS = {"p", "div", "table", "tr", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "h4"}


class _TextWriter(HTMLParser):
    def __init__(self, width: int = WIDTH) -> None:
        super().__init__(convert_charrefs=True)
        self.width = width
        self.blocks: list[str] = []
        self.line: list[str] = []
        self.links: list[str | None] = []
        self.lists: list[list[int]] = []  # a counter per open list; [0] for <ul>
        self.prefix = ""
        self.heading = ""
        self.cells: list[str] = []
        self.rows: list[list[str]] = []
        self.quote = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _BLOCKS or tag == "li":
            self.flush()
        if tag in ("h1", "h2", "h3", "h4"):
            self.heading = tag
        elif tag == "br":
            self.line.append("\n")
        elif tag == "a":
            self.links.append(a.get("href"))
            self.line.append("\x01")  # marks where the link text starts
        elif tag == "img" and a.get("alt"):
            self.line.append(f"[{a['alt']}]")
        elif tag in ("ul", "ol"):
            self.lists.append([0 if tag == "ul" else 1])
        elif tag == "li" and self.lists:
            counter = self.lists[-1]
            self.prefix = "  " * (len(self.lists) - 1) + (f"{counter[0]}. " if counter[0] else "- ")
            if counter[0]:
                counter[0] += 1
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag in ("td", "th"):
            self.cells.append("")
            self.line = []
        elif tag == "hr":
            self.blocks.append("-" * 20)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            self._close_link(self.links.pop())
        elif tag in ("td", "th") and self.cells:
            self.cells[-1] = " ".join("".join(self.line).split())
            self.line = []
        elif tag == "tr":
            self.rows.append(self.cells)
            self.cells = []
        elif tag == "table":
            self.flush()
            self.blocks.extend(table_lines(self.rows, self.width))
            self.rows = []
        elif tag in ("ul", "ol") and self.lists:
            self.flush()
            self.lists.pop()
        elif tag == "blockquote":
            self.flush()
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.flush()
            self.pre = max(0, self.pre - 1)
        elif tag in _BLOCKS or tag == "li":
            self.flush()

    def handle_data(self, data: str) -> None:
        self.line.append(data if self.pre else re.sub(r"\s+", " ", data))

    def _close_link(self, href: str | None) -> None:
        text = "".join(self.line)
        start = text.rfind("\x01")
        label = text[start + 1:].strip()
        self.line = [text[:start]]
        if not href or href == label or href == f"mailto:{label}":
            self.line.append(label or (href or "").removeprefix("mailto:"))
        else:
            self.line.append(f"{label} <{href.removeprefix('mailto:')}>" if label else href)

    def flush(self) -> None:
        text = "".join(self.line).replace("\x01", "")
        self.line = []
        if not text.strip():
            return
        if self.pre:
            self.blocks.append(text.strip("\n"))
            return
        if self.heading:
            title = " ".join(text.split())
            rule = "=" if self.heading in ("h1", "h2") else "-"
            self.blocks.append(f"{title}\n{rule * min(display_width(title), self.width)}")
            self.heading = ""
            return
        quote = "> " * self.quote
        block: list[str] = []  # a <br> starts a new line within the block, not a new paragraph
        for part in text.split("\n"):
            if not part.strip():
                continue
            indent = " " * len(self.prefix)
            lines = wrap(part, self.width - len(quote) - len(indent))
            block += [quote + self.prefix + lines[0]] + [quote + indent + ln for ln in lines[1:]]
            self.prefix = " " * len(self.prefix) if self.prefix else ""
        if block:
            self.blocks.append("\n".join(block))
        self.prefix = ""


def html_to_text(fragment: str, width: int = WIDTH) -> str:
    """Readable plain text for the text/plain part; list items stay on consecutive lines."""
    writer = _TextWriter(width)
    writer.feed(fragment)
    writer.close()
    writer.flush()
    out: list[str] = []
    for block in writer.blocks:
        tight = out and _is_list_line(block) and _is_list_line(out[-1])
        table_row = out and " | " in block and " | " in out[-1]
        out.append(("\n" if tight or table_row else "\n\n") + block if out else block)
    return "".join(out).strip()


def table_lines(rows: list[list[str]], width: int) -> list[str]:
    """Rows with their columns aligned by display width ("a | b"); a table too wide for a
    line is written one cell per line under its header instead, so nothing runs past WIDTH."""
    rows = [row for row in rows if any(cell for cell in row)]
    if not rows:
        return []
    columns = max(len(row) for row in rows)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    widths = [max(display_width(row[i]) for row in rows) for i in range(columns)]
    if sum(widths) + 3 * (columns - 1) <= width:
        return [" | ".join(pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip()
                for row in rows]
    header, body = rows[0], rows[1:] or [rows[0]]
    stacked = []
    for row in body:
        lines = [f"{header[i]}: {cell}" if header[i] and body is not rows else cell
                 for i, cell in enumerate(row) if cell]
        stacked.append("\n".join(hanging(text, width) for text in lines))
    return stacked


def _is_list_line(block: str) -> bool:
    return bool(re.match(r"^\s*(- |\d+\. )", block))
