"""stresscoro: find handle-ownership bugs in C++20 coroutine libraries."""

__version__ = "0.1.0"
