"""Reading README.md's blocks (fast, no server): every block has a runner, and the parser reads what it should."""

from __future__ import annotations

from tests.readme.blocks import commands, readme_blocks, sample_output, synopses
from tests.readme.test_readme_commands import RUNNERS

SAMPLE = """# tool

```bash
make serve   # serve
# make nothing: a comment
```

## A section

Text with `inline` code.

```toml
a = 1
```

### Deeper

```python
print(1)
```

```
driftline run [--flag X] [--mode a|b]
          [--other]
driftline sub one|two [--url URL]   # a comment
```
"""


def test_every_readme_block_has_a_runner_and_every_runner_a_block():
    blocks = readme_blocks()
    missing = [b.label for b in blocks if b.key not in RUNNERS]
    assert not missing, f"blocks no test runs (add a runner): {missing}"
    assert {b.key for b in blocks} == set(RUNNERS), "a runner for a block the README no longer has"


def test_blocks_headings_and_commands():
    blocks = readme_blocks(SAMPLE)
    assert [(b.lang, b.heading, b.line) for b in blocks] == [
        ("bash", "tool", 3),
        ("toml", "A section", 12),
        ("python", "Deeper", 18),
        ("", "Deeper", 22),
    ]
    assert commands(blocks[0]) == ["make serve   # serve"]
    assert blocks[1].text == "a = 1\n"


def test_sample_output_follows_its_command():
    block = readme_blocks('```bash\ncurl x\n# {"a":\n#  1}\necho y\n# no\n```\n')[0]
    assert sample_output(block, "curl") == '{"a":\n1}'


def test_synopsis_lines():
    found = synopses(readme_blocks(SAMPLE)[3])
    assert [(s.path, s.flags) for s in found] == [
        (("run",), {"--flag": "X", "--mode": "a|b", "--other": ""}),
        (("sub", "one"), {"--url": "URL"}),
        (("sub", "two"), {"--url": "URL"}),
    ]
