"""``--where``: a row filter given as text, turned into a polars expression without evaluating Python.

Two forms:

* shorthand ``column == value`` / ``column != value``, clauses joined by ``and``; an unquoted value is
  compared as text (``category == Pleural Effusion``, ``subject_id == 10000032``);
* anything else is a SQL expression, parsed by polars (``polars.sql_expr``): ``split = 'test' AND
  category IN ('Edema', 'Pneumonia')``, ``array_length(boxes) > 1``, ``'left lower' = ANY(locations)``,
  ``phrase ILIKE '%effusion%'``.
"""

from __future__ import annotations

import re
from functools import reduce

import polars as pl

from cxrdata.errors import CxrdataError

_CLAUSE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(==|!=)\s*(.*?)\s*$")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_QUOTED = re.compile(r"""^(['"]).*\1$""")


def _shorthand(text: str) -> pl.Expr | None:
    clauses = []
    for part in _AND.split(text):
        match = _CLAUSE.match(part)
        if not match or not match.group(3) or _QUOTED.match(match.group(3)) or "'" in match.group(3):
            return None
        column, op, value = match.groups()
        as_text = pl.col(column).cast(pl.String)
        clauses.append(as_text == value if op == "==" else as_text != value)
    return reduce(lambda a, b: a & b, clauses)


def parse_where(text: str) -> pl.Expr:
    """The polars expression of a ``--where`` text; a CxrdataError naming the problem if it does not parse."""
    if not text.strip():
        raise CxrdataError("--where is empty")
    if (expr := _shorthand(text)) is not None:
        return expr
    try:
        return pl.sql_expr(text)
    except Exception as exc:  # polars raises several error types for bad SQL
        raise CxrdataError(f"--where {text!r} is neither 'column == value' nor a SQL expression: {exc}") from None
