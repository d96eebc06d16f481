"""How a chapter reports a value: glued for the book's markdown (``{glue:text}`key```), and an
estimate with its interval written the one way the book writes it, ``0.412 [0.380, 0.447]``.

A notebook glues through :func:`glue_values` with the keys spelt out, in the notebook or in the
function that builds the values, so that a key read in the markdown can be found with grep."""
from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd
from myst_nb import glue

__all__ = ["ci_text", "ci_column", "glue_values"]


def ci_text(value: float, low: float, high: float, fmt: str = ".3f") -> str:
    """``value [low, high]`` with every number in ``fmt`` (``"+.3f"`` for a signed difference)."""
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def ci_column(table: pd.DataFrame, value: str = "value", low: str = "ci_low", high: str = "ci_high",
              fmt: str = ".3f") -> pd.Series:
    """:func:`ci_text` of every row of ``table``, from its columns ``value``, ``low`` and ``high``."""
    def cell(col):
        return table[col].map(("{:" + fmt + "}").format)
    return cell(value) + " [" + cell(low) + ", " + cell(high) + "]"


def glue_values(values: Mapping[str, object], *, digits: int | None = None) -> dict:
    """Glue every ``key: value`` of ``values`` for the book, without displaying it here; with
    ``digits``, a float (numpy's too) is glued rounded to that many decimals. Returns the values as
    glued."""
    out = {k: round(float(v), digits) if digits is not None and isinstance(v, float) else v for k, v in values.items()}
    for key, value in out.items():
        glue(key, value, display=False)
    return out


def records_markdown(records, *, title: str, fields, text: str | None = None) -> str:
    """Markdown of one bullet per record (a mapping): its ``title`` in bold, then ``field: value`` for
    each of ``fields``, then the long ``text`` field, if any, as the bullet's own paragraph. For a
    table whose cells would hold paragraphs (model cards, say). Values are text: ``<`` and ``>`` are
    escaped, so a ``<img>`` token in a description is not an HTML image."""
    def esc(v):
        return html.escape(" ".join(str(v).split()), quote=False)
    items = []
    for r in records:
        head = f"- **{esc(r[title])}**: " + "; ".join(f"{f}: {esc(r[f])}" for f in fields)
        items.append(head + (f"\n\n  {esc(r[text])}" if text else ""))
    return "\n".join(items) + "\n"
