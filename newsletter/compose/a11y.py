"""Reading problems `check` reports in a rendered edition: vague link text, file-name alt text,
small body text. Pure: HTML in, findings out."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

MIN_FONT_PX = 14  # smaller body text is hard to read on phones (WCAG 1.4.4; Apple and Google)
# Link texts that say nothing out of context (WCAG 2.4.4), in the six languages of the list.
GENERIC_LINK_TEXT = frozenset({
    # en
    "click here", "here", "read more", "more", "learn more", "this link", "link", "details",
    "continue reading", "find out more", "more info",
    # fr
    "cliquez ici", "ici", "lire la suite", "en savoir plus", "plus", "lien", "suite",
    # es
    "haga clic aquí", "haz clic aquí", "pulse aquí", "aquí", "leer más", "más información",
    "más", "enlace", "seguir leyendo",
    # ru
    "нажмите здесь", "здесь", "подробнее", "читать далее", "далее", "ещё", "еще", "ссылка",
    "узнать больше",
    # zh
    "点击这里", "点击此处", "这里", "此处", "阅读更多", "更多", "了解更多", "详情", "链接",
    # ar
    "انقر هنا", "اضغط هنا", "هنا", "اقرأ المزيد", "المزيد", "للمزيد", "التفاصيل", "رابط",
})
_IMAGE_FILE_RE = re.compile(r"^[\w\-. ()]+\.(png|jpe?g|gif|webp|svg|bmp|tiff?|heic|avif)$",
                            re.IGNORECASE)
_CAMERA_NAME_RE = re.compile(r"^(img|dsc|dscn|dcim|pxl|photo|image|screenshot|scan)"
                             r"[\s_-]*\d[\d_\- ]*$", re.IGNORECASE)
_FONT_SIZE_RE = re.compile(r"font-size\s*:\s*([\d.]+)px", re.IGNORECASE)
_EDGE_RE = re.compile(r"^[\W_]+|[\W_]+$")  # arrows, dots and brackets around the words


def link_text_is_generic(text: str) -> bool:
    words = " ".join(_EDGE_RE.sub("", text.strip().casefold()).split())
    return words in GENERIC_LINK_TEXT


def alt_is_file_name(alt: str, src: str) -> bool:
    alt = alt.strip()
    name = unquote(urlsplit(src).path.rsplit("/", 1)[-1]) if src else ""
    stem = name.rsplit(".", 1)[0]
    # The stem alone counts when it looks machine-made ("hero_2026-11"), not when it is a word
    # that may well be the right description ("Logo" for logo.png).
    machine_stem = bool(re.search(r"[\d_-]", stem))
    return bool(_IMAGE_FILE_RE.match(alt) or _CAMERA_NAME_RE.match(alt)
                or (name and alt.casefold() == name.casefold())
                or (machine_stem and alt.casefold() == stem.casefold()))


class _Reader(HTMLParser):
    """Links with their text, images with their alt, and text under a small font size."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.images: list[tuple[str, str]] = []
        self.small: list[tuple[float, str]] = []
        self._open_links: list[tuple[str, list[str]]] = []
        self._sizes: list[tuple[str, float | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            self._open_links.append((a.get("href", ""), []))
        elif tag == "img":
            self.images.append((a.get("src", ""), a.get("alt", "")))
            if self._open_links and a.get("alt"):
                self._open_links[-1][1].append(a["alt"])
        if tag not in ("img", "br", "hr", "meta", "link", "input"):
            size = _FONT_SIZE_RE.search(a.get("style", ""))
            self._sizes.append((tag, float(size.group(1)) if size else None))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open_links:
            href, text = self._open_links.pop()
            self.links.append((href, " ".join("".join(text).split())))
        for i in range(len(self._sizes) - 1, -1, -1):  # tolerate unclosed <p> and <li>
            if self._sizes[i][0] == tag:
                del self._sizes[i:]
                break

    def handle_data(self, data: str) -> None:
        for _, text in self._open_links:
            text.append(data)
        size = next((s for _, s in reversed(self._sizes) if s is not None), None)
        if size is not None and size < MIN_FONT_PX and data.strip() and not self._hidden():
            self.small.append((size, " ".join(data.split())[:60]))

    def _hidden(self) -> bool:
        # The preheader is set at 1 px on purpose, to be read by the inbox list, not the eye.
        return any(s is not None and s <= 1 for _, s in self._sizes)


def reading_problems(html: str) -> list[tuple[str, str, str]]:
    """(severity, text to find in the draft, message) for each problem a reader would meet."""
    reader = _Reader()
    reader.feed(html)
    found: list[tuple[str, str, str]] = []
    for _href, text in reader.links:
        if text and link_text_is_generic(text):
            found.append(("warning", f"[{text}]", f"link text {text!r} says nothing out of "
                          f"context (screen readers list links alone): name where it goes"))
    for src, alt in reader.images:
        if alt and alt_is_file_name(alt, src):
            found.append(("error", alt, f"image alt text {alt!r} is a file name: describe "
                          "what the image shows"))
    for size, text in dict.fromkeys(reader.small):
        found.append(("warning", "", f"text {text!r} is set at {size:g} px: body text under "
                      f"{MIN_FONT_PX} px is hard to read on phones (templates/style.css)"))
    return found
