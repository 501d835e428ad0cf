"""README.md's fenced blocks, and the command synopsis read as data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    lang: str  # what follows the opening fence: "bash", "python", "toml", or "" for plain text
    heading: str  # the nearest heading above it, without the #s
    text: str
    line: int  # of the opening fence, 1-based

    @property
    def key(self) -> tuple[str, str]:
        return self.heading, self.lang

    @property
    def label(self) -> str:
        return f"README.md:{self.line} {self.lang or 'plain'} under {self.heading!r}"


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, in order."""
    lines = (README.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    heading = ""
    fence: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        if fence is None:
            if line.startswith("```"):
                fence, body = (line[3:].strip(), number), []
            elif line.startswith("#"):
                heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            blocks.append(Block(fence[0], heading, "\n".join(body) + "\n", fence[1]))
            fence = None
        else:
            body.append(line)
    if fence is not None:
        raise ValueError(f"README.md:{fence[1]}: a fence that is never closed")
    return blocks


def commands(block: Block) -> list[str]:
    """A bash block's command lines: comments (and the sample output they show) left out."""
    return [line for line in block.text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def sample_output(block: Block, after: str) -> str:
    """The ``# ...`` lines right after the command line that contains ``after``, unprefixed."""
    lines = block.text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line and not line.startswith("#"))
    out = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            out.append(line[1:].strip())
        elif out:
            break
    return "\n".join(out)


@dataclass(frozen=True)
class Synopsis:
    path: tuple[str, ...]  # the subcommand words after `driftline`
    flags: dict[str, str]  # each flag and the metavar printed after it ("" when none)
    line: str


_FLAG = re.compile(r"(--[a-z][a-z0-9-]*)(?:[ =]([^\s\]\[]+))?")


def synopses(block: Block) -> list[Synopsis]:
    """One entry per command the synopsis lists; ``a|b`` subcommands become one entry each.

    A line that starts with spaces continues the command above; ``#`` starts a comment.
    """
    joined: list[str] = []
    for raw in block.text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if raw[0].isspace() and joined:
            joined[-1] += " " + line.strip()
        else:
            joined.append(line.strip())
    found = []
    for line in joined:
        words = line.split()
        if words[0] != "driftline":
            raise ValueError(f"a synopsis line that is not a driftline command: {line!r}")
        path: list[str] = []
        for word in words[1:]:
            if not re.fullmatch(r"[a-z][a-z|-]*", word):
                break
            path.append(word)
        flags = {m.group(1): m.group(2) or "" for m in _FLAG.finditer(line)}
        for flag, metavar in flags.items():
            if metavar.startswith("-"):
                flags[flag] = ""
        alternatives = path[-1].split("|") if path else [""]
        for alternative in alternatives:
            found.append(Synopsis((*path[:-1], alternative), flags, line))
    return found
