"""XLIFF 2.0 (OASIS): write a draft's units for translators, read their targets back safely."""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from newsletter.compose.xliff_inline import Code, Ph, Span
from newsletter.compose.xliff_segments import Document, Unit
from newsletter.errors import DraftError

NS = "urn:oasis:names:tc:xliff:document:2.0"
MAX_BYTES = 8 * 1024 * 1024  # a month's issue is a few dozen KB
_Q = f"{{{NS}}}"
_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_STRUCTURE = {_Q + t for t in ("xliff", "file", "unit", "notes", "originalData", "segment")}
ET.register_namespace("", NS)


@dataclass(frozen=True)
class Segment:
    unit: str
    source: tuple  # nodes (segments.Span, segments.Ph, str)
    target: tuple | None  # None: no <target>
    state: str


@dataclass(frozen=True)
class XliffFile:
    source_language: str
    target_language: str
    original: str
    segments: tuple[Segment, ...]


def inline_xml(nodes: tuple) -> str:
    """Nodes as XLIFF inline markup without data references: the translation memory's key
    (the same words around the same codes are the same source, whatever the URLs)."""
    return "".join(ET.tostring(e, encoding="unicode") if isinstance(e, ET.Element) else e
                   for e in _xml_parts(nodes, {}))


def _xml_parts(nodes: tuple, codes: dict[str, Code]) -> list:
    holder = ET.Element("t")
    _append(holder, nodes, codes)
    return ([_escape(holder.text)] if holder.text else []) + list(holder)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _append(parent: ET.Element, nodes: tuple, codes: dict[str, Code]) -> None:
    last: ET.Element | None = None
    for node in nodes:
        if isinstance(node, str):
            if last is None:
                parent.text = (parent.text or "") + node
            else:
                last.tail = (last.tail or "") + node
            continue
        code = codes.get(node.code)
        last = ET.SubElement(parent, _Q + ("pc" if isinstance(node, Span) else "ph"),
                             {"id": node.code})
        if code:
            _code_attributes(last, code)
        if isinstance(node, Span):
            _append(last, node.content, codes)


def _code_attributes(element: ET.Element, code: Code) -> None:
    if code.kind == "pc":
        element.set("dataRefStart", f"d{code.id}a")
        element.set("dataRefEnd", f"d{code.id}b")
    else:
        element.set("dataRef", f"d{code.id}a")
    element.set("type", code.type)
    if code.sub_type:
        element.set("subType", code.sub_type)


def write_xliff(doc: Document, *, source_language: str, target_language: str,
                original: str, memory: dict[str, str]) -> bytes:
    """One <unit> per translatable unit; a target pre-filled (state translated) where the
    memory holds a translation of the identical source."""
    root = ET.Element(_Q + "xliff", {"version": "2.0", "srcLang": source_language,
                                     "trgLang": target_language})
    file = ET.SubElement(root, _Q + "file", {"id": "f1", "original": original})
    for unit in doc.units:
        if unit.translatable:
            _write_unit(file, unit, memory.get(inline_xml(unit.content)))
    _indent(root, "\n")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + \
        ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"


def _indent(element: ET.Element, newline: str) -> None:
    """Indent the structure only: whitespace inside <source>/<target> would be text
    (ET.indent does not know the difference)."""
    if element.tag not in _STRUCTURE or not len(element):
        return
    element.text = newline + "  "
    for child in element:
        _indent(child, newline + "  ")
        child.tail = newline + "  "
    element[-1].tail = newline


def _write_unit(file: ET.Element, unit: Unit, remembered: str | None) -> None:
    element = ET.SubElement(file, _Q + "unit", {"id": unit.id, "name": unit.kind})
    notes = ET.SubElement(element, _Q + "notes")
    where = "front matter" if unit.kind in ("subject", "preheader") else \
        "introduction" if unit.section == "intro" else f"section: {unit.section}"
    ET.SubElement(notes, _Q + "note", {"category": "location"}).text = f"{unit.kind}, {where}"
    if unit.codes:
        data = ET.SubElement(element, _Q + "originalData")
        for code in unit.codes:
            ET.SubElement(data, _Q + "data", {"id": f"d{code.id}a"}).text = \
                code.start + (code.end if code.kind == "ph" else "")
            if code.kind == "pc":
                ET.SubElement(data, _Q + "data", {"id": f"d{code.id}b"}).text = code.end
    segment = ET.SubElement(element, _Q + "segment",
                            {"state": "translated" if remembered else "initial"})
    codes = {c.id: c for c in unit.codes}
    source = ET.SubElement(segment, _Q + "source", {_SPACE: "preserve"})
    _append(source, unit.content, codes)
    if remembered is not None:
        target = ET.SubElement(segment, _Q + "target", {_SPACE: "preserve"})
        _append(target, parse_fragment(remembered), codes)


def parse_fragment(text: str) -> tuple:
    """Inline XML (as stored in the memory) back to nodes."""
    element = SafeET.fromstring(f'<t xmlns="{NS}">{text}</t>', forbid_dtd=True)
    return _nodes(element, "translation memory", "")


def read_xliff(data: bytes, where: str) -> XliffFile:
    """Parse an XLIFF 2.0 file from outside: no DTD, no entities, no network, size-capped."""
    if len(data) > MAX_BYTES:
        raise DraftError(where, [f"larger than {MAX_BYTES // 1024 // 1024} MB"])
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise DraftError(where, ["a DTD or entity declaration is not allowed in XLIFF "
                                 f"({type(exc).__name__})"]) from exc
    except ET.ParseError as exc:
        raise DraftError(where, [f"not well-formed XML: {exc}"]) from exc
    if root.tag != _Q + "xliff" or root.get("version") != "2.0":
        raise DraftError(where, [f"not an XLIFF 2.0 file (<xliff version=\"2.0\"> in {NS})"])
    files = root.findall(_Q + "file")
    if len(files) != 1:
        raise DraftError(where, [f"must hold one <file>, not {len(files)}"])
    segments = []
    for unit in files[0].iter(_Q + "unit"):
        parts = unit.findall(_Q + "segment")
        if len(parts) != 1:
            raise DraftError(where, [f"unit {unit.get('id')}: one <segment> expected, "
                                     f"not {len(parts)} (do not split units)"])
        source, target = parts[0].find(_Q + "source"), parts[0].find(_Q + "target")
        uid = unit.get("id") or ""
        segments.append(Segment(uid, _nodes(source, where, uid) if source is not None else (),
                                _trim(_nodes(target, where, uid)) if target is not None
                                else None, parts[0].get("state", "")))
    return XliffFile(root.get("srcLang", ""), root.get("trgLang", ""),
                     files[0].get("original", ""), tuple(segments))


def _nodes(element: ET.Element, where: str, uid: str) -> tuple:
    nodes: list = [element.text] if element.text else []
    for child in element:
        tag = child.tag.removeprefix(_Q)
        if tag == "pc":
            nodes.append(Span(child.get("id", ""), _nodes(child, where, uid)))
        elif tag == "ph":
            nodes.append(Ph(child.get("id", "")))
        elif tag == "mrk":  # an annotation (comment, term, translate="no"): its text counts
            nodes.extend(_nodes(child, where, uid))
        elif tag == "cp" and re.fullmatch(r"[0-9A-Fa-f]{1,6}", child.get("hex", "")):
            nodes.append(chr(int(child.get("hex", ""), 16)))
        else:
            raise DraftError(where, [f"unit {uid}: <{tag}> is not supported inside a segment "
                                     "(use <pc>/<ph>)"])
        if child.tail:
            nodes.append(child.tail)
    return tuple(nodes)


def _trim(nodes: tuple) -> tuple:
    """Without leading and trailing white space: four spaces first would make Markdown code."""
    items = list(nodes)
    if items and isinstance(items[0], str):
        items[0] = items[0].lstrip()
    if items and isinstance(items[-1], str):
        items[-1] = items[-1].rstrip()
    return tuple(i for i in items if i != "")
