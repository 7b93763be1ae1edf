"""Every ```yaml block in the docs and the README is a config ``load_config`` accepts.

Why: the docs are what people copy. A block that is only part of a config says so on its
first line with ``# fragment of: <section>`` and is checked as that section's value.
``${VAR}`` references get placeholder values, so a block is checked as written.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from imagegate.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "providers").glob("*.md")]
)
BLOCK = re.compile(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
FRAGMENT = re.compile(r"^#\s*fragment of:\s*([\w.]+)\s*$")


def blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{doc.relative_to(ROOT)}:{line}", match.group(1)))
    return found


EXAMPLES = blocks()


def test_the_docs_have_yaml_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_yaml_example_is_a_valid_config(where: str, text: str, tmp_path: Path) -> None:
    first = text.splitlines()[0] if text.strip() else ""
    fragment = FRAGMENT.match(first)
    if fragment:
        value = yaml.safe_load(text)
        for key in reversed(fragment.group(1).split(".")):
            value = {key: value}
        text = yaml.safe_dump(value)
    env = {name: f"placeholder-{name.lower()}" for name in REFERENCE.findall(text)}
    path = tmp_path / "example.yaml"
    path.write_text(text)
    try:
        load_config(path, env=env)
    except ConfigError as exc:
        pytest.fail(f"{where}: {exc}")


def test_documented_key_digests_match_the_key_the_snippets_send() -> None:
    """The README and configuration.md show ``sha256:<hex>`` for ``sk-my-gateway-key``."""
    key = "sk-my-gateway-key"
    digest = hashlib.sha256(key.encode()).hexdigest()
    for doc in (ROOT / "README.md", ROOT / "docs" / "configuration.md"):
        text = doc.read_text()
        assert key in text
        shown = re.findall(r"sha256:([0-9a-f]{64})", text)
        assert shown and set(shown) == {digest}, doc
