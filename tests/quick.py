"""The quick subset (``pytest -m "not slow"``): helpers that keep one representative of a
parametrized test in it and mark the other cases slow.

Most of a family case's time is the XLA compilation of its own program (its model is static
and jaxmi.strategy picks the integration from it), so a second case of the same kind costs
as much as the first: the quick run keeps one, the full run (`.ci/run`) all of them.
"""

from collections.abc import Callable, Iterable

import pytest


def first_quick(
    cases: Iterable, keep: Callable[[object], bool] = lambda case: True, *, unpack: bool = False
) -> list:
    """``cases`` as pytest params with every case but the first one that ``keep`` accepts
    marked slow. ``unpack``: each case is a tuple of several arguments' values. A case that
    is already a ``pytest.param`` keeps its marks and id; ``keep`` sees its value (or tuple)."""
    out, kept = [], False
    for case in cases:
        if type(case).__name__ == "ParameterSet":
            values, marks, id_ = tuple(case.values), list(case.marks), case.id
        else:
            values, marks, id_ = (tuple(case) if unpack else (case,)), [], None
        if not kept and keep(values if unpack else values[0]):
            kept = True
        else:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(*values, marks=marks, id=id_))
    return out
