"""Suite-wide guards: every log call must format (a %-style bug fails the test)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci")


class _FailOnBadFormatting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.getMessage()
        except Exception as exc:
            self.errors.append(f"{record.pathname}:{record.lineno}: {exc!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        dest="full_run",
        help="the long runs too: full seed counts and soak-sized campaigns (scripts/test --all)",
    )


@pytest.fixture(scope="session")
def full_run(request: pytest.FixtureRequest) -> bool:
    """True under ``scripts/test --all``: property runs use their full counts."""
    return bool(request.config.getoption("full_run"))


@pytest.fixture(autouse=True)
def _log_format_guard() -> Iterator[None]:
    handler = _FailOnBadFormatting()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    assert not handler.errors, "log calls that do not format: " + "; ".join(handler.errors)
