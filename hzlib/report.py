"""How a chapter reports a value: glued for the book's markdown (``{glue:text}`key```), and an
estimate with its interval written the one way the book writes it, ``0.412 [0.380, 0.447]``.

A notebook glues through :func:`glue_values` with the keys spelt out, in the notebook or in the
function that builds the values, so that a key read in the markdown can be found with grep."""
from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd
from IPython import get_ipython
from IPython.display import Markdown, display
from myst_nb import glue

__all__ = ["ci_text", "ci_column", "glue_values", "skipped", "skip_note", "SKIPPED"]

SKIPPED = "skipped: "  # a glued value that could not be computed on this corpus starts so


def skipped(reason: str) -> str:
    """The text glued in place of a value that this corpus cannot give (the summary page shows it)."""
    return SKIPPED + reason


def skip_note(reason: str, what: str = "") -> None:
    """Show in the chapter, where the skipped output would be, what was skipped and why; returns None
    (so that ``fig = plots.x(...) if why is None else skip_note(why)`` leaves no figure)."""
    display(Markdown(f"**Skipped{': ' + what if what else ''}.** {reason}"))


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


def skip_cell_if(line: str, cell: str) -> None:
    """The cell magic ``%%skip_if NAME``: run the cell unless the notebook's variable ``NAME`` holds a
    reason (a non-empty str) why it cannot run on this corpus; a skipped cell runs nothing and shows
    nothing (the chapter says once, with :func:`skip_note`, what the section skips and why). An error
    of a cell that runs is raised, so papermill stops on it as on any cell's."""
    shell = get_ipython()
    name = line.strip()
    if not name.isidentifier():
        raise ValueError(f"%%skip_if takes one variable name, got {line!r}")
    if name not in shell.user_ns:
        raise NameError(f"%%skip_if {name}: no variable {name!r} in the notebook (set it before this cell)")
    if shell.user_ns[name]:
        return
    shell.run_cell(cell, store_history=False).raise_error()


def load_ipython_extension(shell) -> None:
    """``%load_ext hzlib.report``: registers ``%%skip_if`` (:func:`skip_cell_if`)."""
    shell.register_magic_function(skip_cell_if, magic_kind="cell", magic_name="skip_if")
