"""The benchmark's child processes: a command that cannot start leaves nothing open behind it.

A fresh machine without wrk once failed an unrelated test: the files opened for wrk's output
were collected later, unclosed, and the ResourceWarning landed in whichever test ran then.
"""

from __future__ import annotations

import gc
import warnings

import pytest

from bench.processes import Measured


def test_a_command_that_cannot_start_leaves_no_open_file() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(FileNotFoundError):
            Measured(["/nonexistent/wrk", "--version"])
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
