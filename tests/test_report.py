"""How values are glued and intervals written (hzlib.report)."""
import numpy as np
import pandas as pd
import pytest

from hzlib import report


def test_ci_text_writes_value_and_interval_in_one_format():
    assert report.ci_text(0.41234, 0.38, 0.4471) == "0.412 [0.380, 0.447]"
    assert report.ci_text(0.012, -0.02, 0.045, fmt="+.3f") == "+0.012 [-0.020, +0.045]"


def test_ci_column_is_ci_text_row_by_row():
    t = pd.DataFrame({"value": [0.5, 0.25], "ci_low": [0.4, 0.1], "ci_high": [0.6, 0.33333]})
    assert list(report.ci_column(t)) == [report.ci_text(*r) for r in t.itertuples(index=False)]
    assert list(report.ci_column(t.rename(columns={"value": "recall"}), "recall")) == ["0.500 [0.400, 0.600]",
                                                                                      "0.250 [0.100, 0.333]"]


def test_glue_values_glues_every_key_and_rounds_floats_only(monkeypatch):
    glued = []
    monkeypatch.setattr(report, "glue", lambda k, v, display: glued.append((k, v, display)))
    out = report.glue_values({"a": np.float64(0.123456), "b": 7, "c": "text", "d": 2.0}, digits=3)
    assert out == {"a": 0.123, "b": 7, "c": "text", "d": 2.0}
    assert glued == [("a", 0.123, False), ("b", 7, False), ("c", "text", False), ("d", 2.0, False)]
    assert report.glue_values({"a": 0.123456})["a"] == pytest.approx(0.123456)  # no digits: as given


def test_records_markdown_puts_long_text_in_its_own_paragraph():
    md = report.records_markdown([{"title": "CLIP", "follows": "Radford 2021", "n": 3,
                                   "why": "a long\n   explanation"}],
                                 title="title", fields=["follows", "n"], text="why")
    assert md == "- **CLIP**: follows: Radford 2021; n: 3\n\n  a long explanation\n"
    md = report.records_markdown([{"t": "V", "why": "a learned <img> token"}], title="t", fields=[], text="why")
    assert "&lt;img&gt;" in md and "<img>" not in md  # text, not an HTML image


def test_skip_if_runs_a_cell_only_without_a_reason_and_raises_its_errors():
    from IPython.core.interactiveshell import InteractiveShell

    from hzlib import report

    shell = InteractiveShell.instance()
    report.load_ipython_extension(shell)
    shell.user_ns.update(why="no masks in this corpus", ok=None, ran=0)
    shell.run_cell("%%skip_if why\nran = 1")
    assert shell.user_ns["ran"] == 0
    shell.run_cell("%%skip_if ok\nran = 2")
    assert shell.user_ns["ran"] == 2
    assert not shell.run_cell("%%skip_if ok\n1 / 0").success  # an error of a cell that runs is the cell's
    assert not shell.run_cell("%%skip_if nowhere\nran = 3").success and shell.user_ns["ran"] == 2
    assert report.skipped("no masks") == "skipped: no masks"
