"""The public namespace."""

from __future__ import annotations

import throttlekit as tk


def test_all_is_sorted_and_importable() -> None:
    """`__all__` is sorted and every name in it exists."""
    assert tk.__all__ == sorted(tk.__all__)
    for name in tk.__all__:
        assert hasattr(tk, name), name


def test_errors_share_one_base() -> None:
    """Every throttlekit error derives from ThrottlekitError."""
    for error in (
        tk.RateLimited,
        tk.CapacityExceeded,
        tk.BackendError,
        tk.ConfigurationError,
    ):
        assert issubclass(error, tk.ThrottlekitError)
