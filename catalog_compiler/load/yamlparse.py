"""YAML text -> plain data + position trees, straight from libyaml's event stream.

Why not ruamel's round-trip loader: it is pure Python and ~20x slower. We read events
from ruamel's C parser and build the values ourselves, which also lets us:
- resolve scalars with the YAML 1.2 core schema, numbers with a fraction as exact
  `Decimal` (money never passes through float), dates left as strings;
- report duplicate keys, unknown tags and bad merge keys as diagnostics, not exceptions;
- bound alias expansion ("billion laughs") and nesting depth while building.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from catalog_compiler.diagnostics import Note, Sink, Span
from catalog_compiler.load.positions import Pos, PosTree
from catalog_compiler.load.scalars import CORE, resolve_explicit, resolve_plain
from catalog_compiler.load.yaml_errors import syntax_error

try:  # the C parser; the pure-Python one is a slow but correct fallback
    from _ruamel_yaml import CParser as _Parser
except ImportError:  # pragma: no cover - exercised only without ruamel.yaml.clib
    from ruamel.yaml.parser import Parser as _PyParser
    from ruamel.yaml.reader import Reader
    from ruamel.yaml.scanner import Scanner

    class _Parser:  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            self.loader = self
            self.reader = Reader(text, loader=self)
            self.scanner = Scanner(loader=self)
            self.parser = _PyParser(loader=self)

        def get_event(self) -> Any:
            return self.parser.get_event()


MAX_NODES = 100_000  # expanded nodes per document; a real catalog document has hundreds
MAX_DEPTH = 64
MAX_DOCUMENTS = 10_000  # per file; the largest real ones (imported price lists) hold ~330
_MERGE = "<<"


@dataclass(slots=True)
class Document:
    """One YAML document: plain data (dict/list/str/int/Decimal/bool/None) and positions."""

    file: str
    index: int
    data: Any
    pos: PosTree


def _mark(start: Any, end: Any) -> Pos:
    return (start.line + 1, start.column + 1, end.line + 1, end.column + 1)


class _Frame:
    __slots__ = ("anchor", "children", "is_map", "key", "keypos", "merge", "pos", "size", "value")

    def __init__(self, is_map: bool, pos: Pos, anchor: str | None) -> None:
        self.is_map = is_map
        self.pos = pos
        self.anchor = anchor
        self.size = 1
        self.value: Any = {} if is_map else []
        self.children: Any = {} if is_map else []
        self.key: Any = _NO_KEY
        self.keypos: Pos = pos
        self.merge: list[tuple[Any, PosTree, Pos]] = []


class _Skip:
    """Sentinel key: the value that follows is discarded (duplicate or invalid key)."""


_NO_KEY: Any = object()
_SKIP: Any = _Skip()
_MERGE_KEY: Any = object()
_COMPLEX_KEY: Any = object()  # a mapping/list used as a key: it and its value are dropped


class _Broken(Exception):
    """The current document cannot be built; the rest of its events are skipped."""


class _StopFile(_Broken):
    """A limit that makes the whole file unparsed (E0103, E0108): the rest of it is not
    parsed at all.

    libyaml's scanner does work proportional to the flow depth for every token (it rescans
    its stack of possible simple keys), so 160 KB of `[` cost it minutes. Stopping at the
    first collection too deep bounds that depth, and the scanner's own lookahead is bounded
    (1,024 characters), so a refusal costs milliseconds whatever follows. Likewise the
    events after the 100,000th value of a document would only be skipped one by one."""


class _Builder:
    def __init__(self, file: str, sink: Sink) -> None:
        self.file = file
        self.sink = sink
        self.docs: list[Document] = []
        self.reset()

    def reset(self) -> None:
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, PosTree, int]] = {}
        self.root: tuple[Any, PosTree] | None = None
        self.total = 0
        self.broken = False

    def error(self, code: str, msg: str, pos: Pos, **kw: Any) -> None:
        self.sink.emit(code, msg, Span.at(self.file, pos), **kw)

    # -- values -------------------------------------------------------------------------
    def add(self, value: Any, tree: PosTree, size: int, pos: Pos) -> None:
        self.total += size
        if self.total > MAX_NODES:
            self.error(
                "E0103",
                f"this document holds more than {MAX_NODES:,} values (aliases expanded)",
                pos,
                help="a catalog document never needs this much: split it, or remove the "
                "aliases that multiply it (this looks like an alias bomb)",
            )
            raise _StopFile
        if not self.stack:
            self.root = (value, tree)
            return
        top = self.stack[-1]
        top.size += size
        if not top.is_map:
            top.value.append(value)
            top.children.append(tree)
            return
        key = top.key
        top.key = _NO_KEY
        if key is _COMPLEX_KEY:  # this node was the key; skip the value that follows
            top.key = _SKIP
            return
        if key is _SKIP:
            return
        if key is _MERGE_KEY:
            self.merge_source(top, value, tree, pos)
            return
        top.value[key] = value
        top.children[key] = (top.keypos, tree)

    def merge_source(self, top: _Frame, value: Any, tree: PosTree, pos: Pos) -> None:
        sources = [(value, tree)]
        if isinstance(value, list):
            sources = list(zip(value, tree[1], strict=True))
        for src, src_tree in sources:
            if not isinstance(src, dict):
                self.error(
                    "E0107",
                    "a `<<` merge key needs a mapping or a list of mappings",
                    pos,
                    help="write `<<: *anchor` where the anchor names a mapping",
                )
                continue
            top.merge.append((src, src_tree, pos))

    def key_event(self, top: _Frame, ev: Any) -> None:
        text = ev.value
        pos = _mark(ev.start_mark, ev.end_mark)
        if text == _MERGE and not ev.style and ev.tag is None:
            top.key, top.keypos = _MERGE_KEY, pos
            return
        self.set_key(top, text, pos)

    def set_key(self, top: _Frame, key: str, pos: Pos) -> None:
        if key in top.value:
            first = top.children[key][0]
            self.error(
                "E0101",
                f"duplicate key `{key}`",
                pos,
                help="remove one of them; YAML keeps only one value per key",
                notes=[Note(Span.at(self.file, first), "first defined here")],
            )
            top.key = _SKIP
            return
        top.key, top.keypos = key, pos

    def finish_map(self, frame: _Frame) -> None:
        for src, src_tree, _pos in frame.merge:
            for key, val in src.items():
                if key not in frame.value:
                    frame.value[key] = val
                    frame.children[key] = src_tree[1][key]

    # -- events -------------------------------------------------------------------------
    def scalar(self, ev: Any) -> None:
        stack = self.stack
        if stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
            self.key_event(stack[-1], ev)
            if ev.anchor:
                self.anchors[ev.anchor] = (ev.value, _mark(ev.start_mark, ev.end_mark), 1)
            return
        text = ev.value
        pos = _mark(ev.start_mark, ev.end_mark)
        tag = ev.tag
        if tag is None:
            value = resolve_plain(text) if not ev.style else text
        elif tag == "!":
            value = text
        else:
            value, ok = resolve_explicit(tag, text)
            if not ok:
                self.error(
                    "E0105",
                    f"unsupported tag `{tag}`",
                    pos,
                    help="catalogs use plain YAML: remove the tag (quote the value for a string)",
                )
        if ev.anchor:
            self.anchors[ev.anchor] = (value, pos, 1)
        self.add(value, pos, 1, pos)

    def start(self, ev: Any, is_map: bool) -> None:
        pos = _mark(ev.start_mark, ev.end_mark)
        if self.stack and self.stack[-1].is_map and self.stack[-1].key is _NO_KEY:
            self.error(
                "E0106",
                "a mapping key must be a plain value, not a mapping or list",
                pos,
                help="use a string key",
            )
            self.stack[-1].key = _COMPLEX_KEY
        tag = ev.tag
        if tag is not None and tag != "!" and tag != CORE + ("map" if is_map else "seq"):
            self.error("E0105", f"unsupported tag `{tag}`", pos, help="remove the tag")
        if len(self.stack) >= MAX_DEPTH:
            self.error(
                "E0108",
                f"nesting deeper than {MAX_DEPTH} levels: the rest of this file is not read",
                pos,
                help="a catalog never nests this deep: flatten it (this looks generated or "
                "hostile)",
            )
            raise _StopFile
        self.stack.append(_Frame(is_map, pos, ev.anchor))

    def end(self, ev: Any) -> None:
        frame = self.stack.pop()
        start = frame.pos
        pos: Pos = (start[0], start[1], ev.end_mark.line + 1, ev.end_mark.column + 1)
        if frame.is_map and frame.merge:
            self.finish_map(frame)
        tree = (pos, frame.children)
        if frame.anchor:
            self.anchors[frame.anchor] = (frame.value, tree, frame.size)
        self.add(frame.value, tree, frame.size, pos)

    def alias(self, ev: Any) -> None:
        pos = _mark(ev.start_mark, ev.end_mark)
        found = self.anchors.get(ev.anchor)
        if found is None:
            self.error("E0100", f"unknown alias `*{ev.anchor}`", pos, help="define `&name` first")
            raise _Broken
        value, tree, size = found
        stack = self.stack
        if stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
            if isinstance(value, str):
                self.set_key(stack[-1], value, pos)
            else:
                self.error("E0106", "a mapping key must be a plain value", pos)
                stack[-1].key = _SKIP
            return
        self.add(value, tree, size, pos)

    def end_document(self, index: int) -> None:
        if not self.broken and self.root is not None and self.root[0] is not None:
            self.docs.append(Document(self.file, index, self.root[0], self.root[1]))


def _too_many_documents(ev: Any, file: str, sink: Sink) -> None:
    sink.emit(
        "E0109",
        f"more than {MAX_DOCUMENTS:,} YAML documents in one file: the file is not read",
        Span.at(file, _mark(ev.start_mark, ev.end_mark)),
        help="split it into several files (real ones hold a few hundred at most)",
    )


def parse_text(text: str, file: str, sink: Sink) -> list[Document]:
    """Every complete document of `text`; problems go to `sink`, never raise."""
    builder = _Builder(file, sink)
    parser = _Parser(text)
    index = -1
    handlers = {
        ScalarEvent: builder.scalar,
        AliasEvent: builder.alias,
        MappingEndEvent: builder.end,
        SequenceEndEvent: builder.end,
    }
    try:
        while True:
            ev = parser.get_event()
            kind = type(ev)
            handler = handlers.get(kind)
            if handler is not None:
                if not builder.broken:
                    try:
                        handler(ev)
                    except _StopFile:
                        break
                    except _Broken:
                        builder.broken = True
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if not builder.broken:
                    try:
                        builder.start(ev, kind is MappingStartEvent)
                    except _StopFile:
                        break
                    except _Broken:
                        builder.broken = True
            elif kind is DocumentStartEvent:
                index += 1
                if index >= MAX_DOCUMENTS:
                    _too_many_documents(ev, file, sink)
                    return []
                builder.reset()
            elif kind is DocumentEndEvent:
                builder.end_document(index)
            elif kind is StreamEndEvent:
                break
    except YAMLError as exc:
        syntax_error(exc, text, file, sink)
    return builder.docs


def decode(raw: bytes, file: str, sink: Sink) -> str | None:
    """UTF-8 text without BOM, or None (with a located E0102) when it is not UTF-8."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        col = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        help_text = "re-save the file as UTF-8"
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            help_text = (
                "the file is UTF-16 (it starts with a UTF-16 byte-order mark): save as UTF-8"
            )
        sink.emit(
            "E0102",
            f"invalid UTF-8 byte 0x{raw[exc.start]:02x}: catalog files must be UTF-8 text",
            Span(file, line, col, line, col),
            help=help_text,
        )
        return None
