"""`hz record --compare` / `hz verify`: two run records compared value by value, each within the
tolerance of its kind; the kernels' thread and hash settings that keep runs comparable."""
import copy
import json
import os

import nbformat
import pytest

from hzlib import config
from hzlib.cli import main
from hzlib.reproduce import Layout, chapter_env, chapter_environment, record_run
from hzlib.verify import TOLERANCES, Run, compare_runs, compare_value, load_run, parse_value, report, rule_for


def _run() -> Run:
    """A small hand-built run: two chapters' glue and one stage summary."""
    record = {"profile": "default", "commit": "abc", "status": "complete",
              "environment": {"cpu_count": 2, "packages": {"numpy": "2.0"}, "time_utc": "t0"},
              "chapters": {
                  "01_data_statistics": {"glue": {"ch01_n_images": "1850", "ch01_colour_hist_macro_acc": "0.483",
                                                  "ch01_class_counts": "'302, 204, 153'"}},
                  "05_clip_training": {"glue": {"final_loss": "0.996", "train_seconds": "24",
                                                "ch05_i2t_r10": "'0.446 [0.385, 0.507]'", "sweep_learnt": "'12 of 12'",
                                                "fig5_iter": "7", "best_tau": "'learnt'",
                                                "ch05_probe_acc_ref": "'macro-F1; random init 0.337 [0.281, 0.390]'"}}}}
    stages = {"sfm": {"orbits": [{"metrics": {"sparse": {"n_points": 1999}}, "times": {"features": 13.5}}],
                      "environment": {"threads": {"OMP_NUM_THREADS": "2"}}},
              "evaluation": {"macro": [{"value": 0.514, "ci_low": 0.485, "ci_high": 0.544, "metric": "precision"}],
                             "paired": [{"difference": 0.09, "ci_low": 0.07, "ci_high": 0.12, "p_value": 1e-10}]}}
    return Run(record, stages, "reference")


def _changed(edit) -> Run:
    ref = _run()
    rec, stages = copy.deepcopy(ref.record), copy.deepcopy(ref.stages)
    edit(rec["chapters"], stages)
    return Run(rec, stages, "now")


def _glue(chapters, stem):
    return chapters[stem]["glue"]


def test_identical_runs_pass_with_nothing_drifted():
    cmp = compare_runs(_run(), _run())
    assert cmp.ok and cmp.drifted == [] and len(cmp.rows) > 20
    assert "reproduced: " in report(cmp, _run(), _run())


def test_a_corpus_count_off_by_one_fails_and_is_named():
    now = _changed(lambda ch, st: _glue(ch, "01_data_statistics").update(ch01_n_images="1851"))
    cmp = compare_runs(_run(), now)
    assert not cmp.ok
    [bad] = cmp.failures
    assert (bad.where, bad.key, bad.tolerance, bad.diff) == ("01_data_statistics", "ch01_n_images", "exact", 1)
    text = report(cmp, _run(), now)
    assert "NOT reproduced" in text and "01_data_statistics::ch01_n_images" in text
    # one count inside a glued list is enough
    now = _changed(lambda ch, st: _glue(ch, "01_data_statistics").update(ch01_class_counts="'302, 205, 153'"))
    assert [r.key for r in compare_runs(_run(), now).failures] == ["ch01_class_counts"]


def test_a_metric_and_a_loss_pass_within_their_relative_tolerance_and_fail_beyond():
    within = _changed(lambda ch, st: (_glue(ch, "01_data_statistics").update(ch01_colour_hist_macro_acc="0.500"),
                                      _glue(ch, "05_clip_training").update(final_loss="1.040")))
    cmp = compare_runs(_run(), within)
    assert cmp.ok and {r.key for r in cmp.drifted} == {"ch01_colour_hist_macro_acc", "final_loss"}
    beyond = _changed(lambda ch, st: _glue(ch, "05_clip_training").update(final_loss="1.060"))  # +6.4% > 5%
    [bad] = compare_runs(_run(), beyond).failures
    assert bad.key == "final_loss" and bad.tolerance == "loss" and "moves more than" in bad.note


def test_counts_a_computation_finds_move_by_5_percent_or_1():
    ok = _changed(lambda ch, st: (st["sfm"]["orbits"][0]["metrics"]["sparse"].update(n_points=2028),
                                  _glue(ch, "05_clip_training").update(fig5_iter="8")))
    assert compare_runs(_run(), ok).ok
    bad = _changed(lambda ch, st: (st["sfm"]["orbits"][0]["metrics"]["sparse"].update(n_points=2200),
                                   _glue(ch, "05_clip_training").update(fig5_iter="9")))
    assert {(r.where, r.key) for r in compare_runs(_run(), bad).failures} == {
        ("sfm.json", "orbits/0/metrics/sparse/n_points"), ("05_clip_training", "fig5_iter")}


def test_an_estimate_passes_inside_the_recorded_interval_and_fails_outside():
    inside = _changed(lambda ch, st: _glue(ch, "05_clip_training").update(ch05_i2t_r10="'0.500 [0.440, 0.560]'"))
    assert compare_runs(_run(), inside).ok
    outside = _changed(lambda ch, st: _glue(ch, "05_clip_training").update(ch05_i2t_r10="'0.520 [0.460, 0.580]'"))
    [bad] = compare_runs(_run(), outside).failures
    assert bad.key == "ch05_i2t_r10" and "0.52 outside [0.385, 0.507]" in bad.note


def test_intervals_held_in_sibling_keys_of_a_stage_summary():
    inside = _changed(lambda ch, st: st["evaluation"]["macro"][0].update(value=0.53, ci_low=0.50, ci_high=0.56))
    cmp = compare_runs(_run(), inside)
    assert cmp.ok
    assert {r.key: r.tolerance for r in cmp.drifted} == {"macro/0/value": "ci", "macro/0/ci_low": "ci bound",
                                                         "macro/0/ci_high": "ci bound"}
    outside = _changed(lambda ch, st: st["evaluation"]["macro"][0].update(value=0.55))
    assert [r.key for r in compare_runs(_run(), outside).failures] == ["macro/0/value"]
    # a p-value passes while it stays on the same side of 0.05
    assert compare_runs(_run(), _changed(lambda ch, st: st["evaluation"]["paired"][0].update(p_value=0.01))).ok
    crossed = _changed(lambda ch, st: st["evaluation"]["paired"][0].update(p_value=0.2))
    assert [r.key for r in compare_runs(_run(), crossed).failures] == ["paired/0/p_value"]


def test_a_key_missing_on_either_side_is_reported_and_fails():
    def edit(ch, st):
        del _glue(ch, "05_clip_training")["final_loss"]
        _glue(ch, "05_clip_training")["new_key"] = "1"
    cmp = compare_runs(_run(), _changed(edit))
    notes = {r.key: r.note for r in cmp.failures}
    assert notes == {"final_loss": "missing in this run", "new_key": "not in the reference"}
    # a chapter that did not run is one failing row
    cmp = compare_runs(_run(), _changed(lambda ch, st: ch.pop("05_clip_training")))
    assert [(r.where, r.key, r.note) for r in cmp.failures] == [("05_clip_training", "*", "not run in this run")]


def test_timings_environment_and_choices_are_reported_not_checked():
    def edit(ch, st):
        _glue(ch, "05_clip_training").update(train_seconds="99", best_tau="'fixed'")
        st["sfm"]["orbits"][0]["times"]["features"] = 50.0
        st["sfm"]["environment"]["threads"]["OMP_NUM_THREADS"] = "1"
        st["sfm"]["environment"]["cpu_model"] = "new key"
    cmp = compare_runs(_run(), _changed(edit))
    assert cmp.ok and len(cmp.drifted) == 5
    assert list(cmp.drift_table()["key"]) == ["best_tau"]  # the choice is shown; timings and environment hidden
    assert len(cmp.drift_table(show_all=True)) == 5


def test_words_that_differ_fail_even_when_the_numbers_agree():
    now = _changed(lambda ch, st: _glue(ch, "05_clip_training").update(sweep_learnt="'12 of 12 (2 diverged)'"))
    [bad] = compare_runs(_run(), now).failures
    assert bad.key == "sweep_learnt" and bad.note == "the words differ"


def test_parse_value_reads_numbers_intervals_and_leaves_words():
    p = parse_value("'macro-F1; random init 0.337 [0.281, 0.390]; HOG 1,850 −0.5 7%'", glued=True)
    assert p.numbers == (0.337, 0.281, 0.390, 1850, -0.5, 7) and p.groups == (0,)
    assert p.template == "macro-F1; random init # [#, #]; HOG # # #%"
    assert parse_value("hz00813").numbers == () and parse_value(3).template == "#"
    assert parse_value(True).template == "True"


def test_rules_classify_the_keys_of_the_reference_run():
    assert rule_for("ch01_n_images").name == "exact" and rule_for("orbits/3/metrics/dense/n_points").name == "count"
    assert rule_for("final/final_loss").name == "loss" and rule_for("environment/packages/numpy").name == "meta"
    assert rule_for("orbits/0/times/mapping").name == "timing" and rule_for("ch08_time_clip_ms").name == "timing"
    assert rule_for("training/0/loss, first 10 steps").name == "loss"
    assert rule_for("ch05_i2t_r10") is None  # by type: its interval decides
    assert TOLERANCES["count"].within(7, 8) and not TOLERANCES["count"].within(7, 9)
    with pytest.raises(ValueError, match="'ci' needs the recorded interval"):
        TOLERANCES["ci"].within(0.5, 0.5)
    # the committed reference run compares equal to itself and every key gets a tolerance
    ref = load_run(config.project_root(__file__) / "results" / "default")
    cmp = compare_runs(ref, ref)
    assert cmp.ok and not cmp.drifted and all(r.tolerance in TOLERANCES or "," in r.tolerance for r in cmp.rows)


def test_compare_value_names_what_it_compared():
    row = compare_value("05", "ch05_probe_acc_ref", "'macro-F1; random init 0.337 [0.281, 0.390]'",
                        "'macro-F1; random init 0.270 [0.220, 0.320]'", glued=True)
    assert not row.within and row.tolerance == "ci, ci bound" and row.recorded.startswith("macro-F1")
    assert row.note.startswith("0.27 outside [0.281, 0.39]; 0.281 -> 0.22 moves more than 0.0545")


def _project(tmp_path, glue_value: str = "'0.5 [0.4, 0.6]'"):
    """A study folder with one executed chapter (one glued value) and one stage summary."""
    (tmp_path / "notebooks").mkdir(exist_ok=True)
    (tmp_path / "book" / "chapters").mkdir(parents=True, exist_ok=True)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/chapters/01_a\n",
                                       encoding="utf-8")
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"application/papermill.record/text/plain": glue_value},
        metadata={"scrapbook": {"name": "ch01_x", "mime_prefix": "application/papermill.record/"}})]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "book" / "chapters" / "01_a.ipynb")
    (tmp_path / "book" / "chapters" / ".01_a.json").write_text(json.dumps({"profile": "default", "seconds": 1}))
    stage = tmp_path / "artifacts" / "default" / "sfm"
    stage.mkdir(parents=True, exist_ok=True)
    (stage / "summary.json").write_text(json.dumps({"orbits": [{"registered": 36}]}))
    return Layout(tmp_path)


def test_cli_record_compare_passes_then_names_the_drifted_key(tmp_path, monkeypatch, capsys):
    lay = _project(tmp_path)
    record_run(lay, log=lambda *_: None)
    monkeypatch.chdir(tmp_path)
    assert main(["record", "--compare"]) == 0
    assert "reproduced: " in capsys.readouterr().out
    _project(tmp_path, "'0.7 [0.6, 0.8]'")  # outside [0.4, 0.6]
    assert main(["verify", "--report", str(tmp_path / "drift.csv")]) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced" in out and "01_a::ch01_x" in out and "0.7 outside [0.4, 0.6]" in out
    assert "ch01_x" in (tmp_path / "drift.csv").read_text()
    assert main(["verify", "--against", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/record.json: no run record there" in capsys.readouterr().err
    assert main(["record", "--compare", "--out", str(tmp_path / "x")]) == 2


def test_chapter_kernels_get_the_profiles_threads_and_a_fixed_hash_seed(monkeypatch):
    prof = config.Profile(workers=3)
    assert chapter_env(prof) == {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "MKL_NUM_THREADS": "3",
                                 "PYTHONHASHSEED": "0"}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with chapter_environment(prof):
        assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["MKL_NUM_THREADS"] == "3"
    assert os.environ["OMP_NUM_THREADS"] == "1" and "MKL_NUM_THREADS" not in os.environ


def test_environment_records_cpu_and_thread_pools():
    env = config.environment()
    assert set(env["threads"]) == set(config.THREAD_VARS)
    assert any(p["internal_api"] == "openblas" for p in env["thread_pools"])
    json.dumps(env)


def test_recomputing_with_force_is_not_a_drift():
    assert rule_for("profile/force").name == "meta" and rule_for("final/config/profile/force").name == "meta"
    assert rule_for("profile/seed").name == "exact"  # a real setting must match
