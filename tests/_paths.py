"""Folders the tests read: the repository, its test data and the shared material beside it."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TEST_DATA = TESTS / "data"
#: ``../shared`` of the checkout (real heads, vendor samples); tests skip when it is absent.
SHARED = REPO.parent / "shared"
