"""A library's CI suite: one fuzz test per adapter and sanitizer, plus an ordinary test."""

from stresscoro.pytest_plugin import fuzz_tests

test_tiny_buggy = fuzz_tests("buggy_adapter.cpp", include_dirs=["include"])
test_tiny_clean = fuzz_tests("clean_adapter.cpp", include_dirs=["include"])


def test_ordinary():
    assert 1 + 1 == 2
