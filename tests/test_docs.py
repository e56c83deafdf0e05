"""The documents stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from rpilinkd.errors import error_classes

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_documented_error_code_exists() -> None:
    table = (DOCS / "api.md").read_text().split("## Errors")[1].split("## Limits")[0]
    codes = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", table, re.M))
    documented = {c for pair in codes for c in pair if c}
    assert documented
    assert documented <= set(error_classes())
