"""docs/writing-a-business-type.md shows the business-type template's code, block for block, so the generated
plugin's tests (test_generated_plugins.py) keep the walkthrough true."""
import re
from pathlib import Path

import pytest

from esomp_kit import new_plugin

WALKTHROUGH = Path(__file__).resolve().parents[3] / "docs" / "writing-a-business-type.md"
# A code block of a file: an HTML comment naming the file, then the fenced block.
BLOCK = re.compile(r"<!-- file: (?P<file>\S+) -->\n```[a-z]*\n(?P<code>.*?)\n```", re.S)


def shown_files(text):
    """The files the page shows: the blocks of one file, joined by two blank lines (where the page splits them)."""
    files = {}
    for match in BLOCK.finditer(text):
        files.setdefault(match["file"], []).append(match["code"])
    return {name: "\n\n\n".join(blocks) + "\n" for name, blocks in files.items()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("walkthrough") / "payments"
    new_plugin("business-type", "payments", root)
    return root


def test_walkthrough_shows_every_file_of_the_business_type_template(generated):
    shown = shown_files(WALKTHROUGH.read_text(encoding="utf-8"))
    assert set(shown) == {"setup.cfg", "esomp_payments/__init__.py", "esomp_payments/plugin.py",
                          "tests/test_esomp_payments.py"}
    for name, code in shown.items():
        assert code == (generated / name).read_text(encoding="utf-8"), f"{WALKTHROUGH.name} differs from {name}"


def test_shown_files_joins_the_blocks_of_one_file():
    page = ("<!-- file: a.py -->\n```python\nx = 1\n```\ntext\n<!-- file: a.py -->\n```python\ny = 2\n```\n"
            "<!-- file: b.cfg -->\n```ini\n[b]\n```\n")
    assert shown_files(page) == {"a.py": "x = 1\n\n\ny = 2\n", "b.cfg": "[b]\n"}
