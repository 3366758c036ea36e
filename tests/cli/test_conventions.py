"""Command-line conventions (clig.dev): every --help ends with examples that parse, colour
honours NO_COLOR and TERM=dumb, --version names the bundle format."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from catalog_compiler.cli import cli
from runtime.bundle.canonical import FORMAT

EXAMPLE_LINE = re.compile(r"^\s+\$ (catalogc .*)$")


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        assert sub is not None
        if isinstance(sub, click.Group):
            yield from commands(sub, (*path, name))
        else:
            yield (*path, name)


COMMANDS = list(commands())


def resolve(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


def examples_of(help_text: str) -> list[str]:
    lines = help_text.rstrip("\n").splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    tail = [line for line in lines[start + 1 :] if line.strip()]
    assert tail and all(EXAMPLE_LINE.match(line) for line in tail), tail
    return [EXAMPLE_LINE.match(line).group(1) for line in tail]  # type: ignore[union-attr]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "catalogc")
def test_help_ends_with_examples_that_parse(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    found = examples_of(result.output)
    assert 1 <= len(found) <= 2
    for example in found:
        words = shlex.split(example.split(" | ")[0].split(" && ")[0].split(" > ")[0])
        assert words[0] == "catalogc"
        # the example names this command (or, for a group, one beneath it) ...
        assert tuple(words[1 : 1 + len(path)]) == path, example
        # ... and click accepts its arguments and options as written
        target_path = (
            tuple(words[1 : 1 + len(path) + 1]) if isinstance(resolve(path), click.Group) else path
        )
        command = resolve(target_path)
        args = words[1 + len(target_path) :]
        command.make_context(" ".join(target_path), list(args))


def test_term_dumb_and_no_color_mean_no_colour(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "catalog.yaml").write_text("kind: Organization\nversion: 1\nname: X\nbogus: 1\n")
    runner = CliRunner()
    colored = runner.invoke(cli, ["validate", str(root), "--no-cache", "--color", "always"])
    assert "\x1b[" in colored.output
    for env in ({"TERM": "dumb"}, {"NO_COLOR": "1"}):
        # "auto" on a terminal: CliRunner is not one, so ask the policy directly as well
        from catalog_compiler.cli.options import plain_terminal, use_color

        result = runner.invoke(cli, ["validate", str(root), "--no-cache"], env=env)
        assert "\x1b[" not in result.output and "E0202" in result.output
        with runner.isolation(env=env):
            assert plain_terminal()

            class Tty:
                def isatty(self) -> bool:
                    return True

            assert not use_color("auto", Tty())  # type: ignore[arg-type]
    with runner.isolation(env={"TERM": "xterm-256color", "NO_COLOR": None}):
        assert not plain_terminal()


def test_version_names_the_bundle_format() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("catalogc 0.") and FORMAT in result.output
