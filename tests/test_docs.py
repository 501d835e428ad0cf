"""The project's own docs: the README's settings block is valid TOML with the real keys and defaults, nothing in
the repository cites a file outside it, and every relative link in the README and docs/ points at a file."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import msgspec

from driftline.config import HttpSettings

ROOT = Path(__file__).resolve().parent.parent


def _settings_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Server settings") :]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_settings_block_is_valid_toml_with_the_real_http_keys_and_defaults():
    http = tomllib.loads(_settings_block())["http"]
    defaults = msgspec.structs.asdict(HttpSettings())
    for key, value in http.items():
        assert key in defaults, f"[http] {key} in the README is not a setting"
        assert value == defaults[key], f"[http] {key}: README says {value!r}, the default is {defaults[key]!r}"
    for key in ("keep_alive_s", "header_timeout_s", "body_timeout_s", "max_connections"):
        assert key in http, f"[http] {key} is missing from the README's settings block"


# Built from pieces so that this file does not match itself.
_OUTSIDE = re.compile(
    r"(?<![\w./-])(?:\.\./)*"
    + "sha"
    + r"red/"  # the notes folder beside the checkout
    + r"|(?<![\w.-])/"
    + "wo"
    + r"rk/"  # the build machine's absolute paths
)
_MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        paths = [ROOT / name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked source archive)
        skip = {".git", ".venv", "target", "__pycache__", "node_modules"}
        paths = [p for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    return [p for p in paths if p.is_file() and b"\0" not in p.read_bytes()[:8192]]


def test_no_file_in_the_repository_cites_a_path_outside_it():
    files = _tracked_text_files()
    assert any(p.name == "README.md" for p in files)
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in files
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert not offenders, "citations of files outside the repository:\n" + "\n".join(offenders)


def test_every_relative_link_in_the_readme_and_docs_points_at_a_file_in_the_repository():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert {"design.md", "drift.md"} <= {p.name for p in docs}
    broken = []
    for doc in docs:
        for target in _MD_LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:|#", target):  # a URL or an anchor on the same page
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "relative links to nothing in the repository:\n" + "\n".join(broken)
