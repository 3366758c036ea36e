"""A YAML syntax error as one located diagnostic (E0100), with a hint where we know the
usual cause: an unclosed bracket or quote points at where it opens, tabs and `@` are named."""

from __future__ import annotations

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from catalog_compiler.diagnostics import Note, Sink, Span
from catalog_compiler.load.positions import Pos


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.splitlines()
    if 1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]):
        return lines[line - 1][col - 1]
    return ""


_OPENERS = {
    "while parsing a flow sequence": ("`[`", "expected `,` or `]` here"),
    "while parsing a flow mapping": ("`{`", "expected `,` or `}` here"),
    "while scanning a quoted scalar": ("quoted string", "the file ends here"),
}


def _syntax_hint(problem: str, char: str) -> str | None:
    if "tab" in problem or char == "\t":
        return "YAML does not allow tabs for indentation: use spaces"
    if char in ("@", "`"):
        return f'`{char}` cannot start a plain YAML value: quote it, e.g. "@openai-prod"'
    if problem.startswith("mapping values are not allowed"):
        return "check the indentation of this line, or quote a value that contains `: `"
    return None


def _marked_error(exc: MarkedYAMLError, text: str, file: str) -> tuple[Pos, str, list[Note]]:
    mark = exc.problem_mark
    pos: Pos = (mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 1)
    problem = exc.problem or "invalid YAML"
    notes: list[Note] = []
    cm = exc.context_mark
    if not exc.context or cm is None or (cm.line + 1, cm.column + 1) == pos[:2]:
        return pos, problem, notes
    context = (cm.line + 1, cm.column + 1, cm.line + 1, cm.column + 2)
    opener = _OPENERS.get(exc.context)
    if opener and _char_at(text, pos[0], pos[1]) not in ("]", "}"):
        # an unclosed bracket or quote (not a wrong closer): point at where it opens
        notes.append(Note(Span.at(file, pos), opener[1]))
        return context, f"this {opener[0]} is never closed", notes
    notes.append(Note(Span.at(file, context), exc.context))
    return pos, problem, notes


def syntax_error(exc: YAMLError, text: str, file: str, sink: Sink) -> None:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        pos, problem, notes = _marked_error(exc, text, file)
    else:  # ReaderError: a character YAML does not allow
        index = getattr(exc, "position", 0) or 0
        line = text.count("\n", 0, index) + 1
        col = index - (text.rfind("\n", 0, index) + 1) + 1
        pos = (line, col, line, col)
        char = getattr(exc, "character", None)
        problem = "a control character is not allowed in YAML"
        if isinstance(char, int):
            problem = f"character U+{char:04X} is not allowed in YAML"
        notes = []
    help_text = _syntax_hint(problem, _char_at(text, pos[0], pos[1]))
    sink.emit("E0100", problem, Span.at(file, pos), help=help_text, notes=notes)
