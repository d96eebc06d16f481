"""hzlib.paper holds every number the paper states about its results, once each, with where it is
stated; profiles/models/paper.yml agrees with it. Where the paper's text is at hand (HZ_PAPER_MD, or
the shared copy), every number is also checked against it."""
import os
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from hzlib import paper

ROOT = Path(__file__).resolve().parent.parent
_CANDIDATES = [os.environ.get("HZ_PAPER_MD", ""), "/work/shared/paper/luo2024.md"]
PAPER_MD = next((Path(p) for p in _CANDIDATES if p and Path(p).is_file()), None)
needs_paper = pytest.mark.skipif(PAPER_MD is None, reason="the paper's text (HZ_PAPER_MD) is not available")
SECTIONS = ("Abstract", "Introduction", "Section 3", "Section 4", "Section 5", "Section 6")


def test_every_model_and_metric_is_stated_once_with_where():
    pairs = Counter((r.model, r.metric) for r in paper.RESULTS)
    assert max(pairs.values()) == 1, [k for k, n in pairs.items() if n > 1]
    assert set(pairs) == {(m, k) for m in paper.MODELS for k in paper.METRICS}  # 5 models x 8 metrics
    for r in paper.RESULTS:
        assert any(part.strip().startswith(SECTIONS) for part in r.where.split(";")), r


def test_views_are_the_results_not_copies():
    for m in ("precision", "recall", "f1", "accuracy", "auc", "rmse", "mae"):
        assert paper.HEADLINE[m] is paper.result("clip", m).value
        assert paper.HEADLINE_WHERE[m] == paper.result("clip", m).where
    assert paper.HEADLINE["analysis_time_ms"] is paper.result("clip", "time_ms").value
    with pytest.raises(KeyError):
        paper.result("clip", "bleu")


def test_the_auc_gain_is_relative():
    clip, m3 = paper.result("clip", "auc").value, paper.result("m3p", "auc").value
    assert round((clip - m3) / m3, 3) == paper.AUC_GAIN_OVER_M3
    assert round(clip - m3, 3) != paper.AUC_GAIN_OVER_M3  # not points


def test_the_best_comparator_claim_holds_for_every_metric_it_names():
    claim = paper.EVALUATION_CLAIMS[-1][1]
    others = [m for m in paper.MODELS if m != "clip"]
    for metric in ("precision", "recall", "f1", "accuracy", "rmse", "mae"):
        vals = {m: paper.result(m, metric).value for m in others}
        best = (min if metric in ("rmse", "mae") else max)(vals, key=vals.get)
        assert paper.COMPARATORS[best] in claim.split(";")[0], metric
    auc = {m: paper.result(m, "auc").value for m in others}
    assert paper.COMPARATORS[max(auc, key=auc.get)] in claim.split(";")[1]


def test_table2_and_hyperparameters_are_complete():
    assert [r.text_id for r in paper.TABLE2] == ["001", "002", "003", "004", "005"]
    assert len(paper.TABLE2_COLUMNS) == 6 and paper.TABLE2_WHERE.startswith("Section 3")
    assert {"text_layers", "text_heads", "text_width", "image_heads", "image_width", "image_size", "fusion_width",
            "output_width", "learning_rate", "batch_size", "iterations", "best_setting"} <= set(paper.HYPERPARAMETERS)
    assert all(s.where.startswith("Section 4") for s in paper.HYPERPARAMETERS.values())
    assert paper.FIGURE5 == {"clusters": 3, "iterations": 6}


def test_the_geometry_file_states_what_the_paper_states():
    raw = yaml.safe_load((ROOT / "profiles" / "models" / "paper.yml").read_text(encoding="utf-8"))
    hp = {k: s.value for k, s in paper.HYPERPARAMETERS.items()}
    assert (raw["text"]["layers"], raw["text"]["heads"], raw["text"]["width"]) == \
        (hp["text_layers"], hp["text_heads"], hp["text_width"])
    assert (raw["vision"]["heads"], raw["vision"]["width"], raw["vision"]["image_size"]) == \
        (hp["image_heads"], hp["image_width"], hp["image_size"])
    assert raw["embed_dim"] == hp["fusion_width"]
    assert raw["vision"]["layers"] is None and raw["vision"]["patch_size"] is None and raw["context_length"] is None
    # the rounding the file documents: the divisor of 1280 nearest 76 heads
    divisors = [h for h in range(1, hp["text_width"] + 1) if hp["text_width"] % h == 0]
    assert min(divisors, key=lambda h: abs(h - hp["text_heads"])) == 80
    assert "80 heads of 16" in (ROOT / "profiles" / "models" / "paper.yml").read_text(encoding="utf-8")


# ------------------------------------------------------------------- against the paper's own text

@pytest.fixture(scope="module")
def md():
    return PAPER_MD.read_text(encoding="utf-8")


def _section(md: str, number: int) -> str:
    start = re.search(rf"^#+ {number}\. ", md, re.M).start()
    end = re.search(rf"^#+ {number + 1}\. ", md, re.M)
    return md[start:end.start() if end else len(md)]


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]


@needs_paper
def test_table3_against_the_paper(md):
    rows = re.findall(r"^(CLIP|M3|Dual-Attention Network|Image-Text Embedding Model|ViLBERT)\t(.*)$",
                      _section(md, 6), re.M)
    by_name = {v: k for k, v in paper.COMPARATORS.items()}
    assert len(rows) == 5
    for name, cells in rows:
        assert _numbers(cells) == [paper.result(by_name[name], m).value for m in ("rmse", "mae", "time_ms")]
        assert paper.result(by_name[name], "rmse").where.endswith("Table 3")


@needs_paper
def test_figures_7_and_8_against_the_paper(md):
    s6 = _section(md, 6)
    fig7 = re.search(r"other four models.*?were ([\d., ;\n]+), respectively", s6, re.S).group(1)
    groups = [_numbers(g) for g in fig7.split(";")]
    order = ["m3p", "dan", "item", "vilbert"]  # the order in which the text lists them
    assert groups == [[paper.result(m, k).value for k in ("precision", "recall", "f1", "accuracy")] for m in order]
    assert "all four different indicators reached 0.98" in s6
    assert all(paper.result("clip", k).value == 0.98 for k in ("precision", "recall", "f1", "accuracy"))
    fig8 = re.search(r"AUC mean values of M3, Dual-Attention Network, Image-Text Embedding Model, ViLBERT, and CLIP"
                     r".*?were ([\d., and]+), respectively", s6, re.S).group(1)
    assert _numbers(fig8) == [paper.result(m, "auc").value for m in (*order, "clip")]
    assert "approximately 5.4%" in s6 and "5.4% higher average" in md


@needs_paper
def test_table2_hyperparameters_and_figure5_against_the_paper(md):
    s3, s4, s5 = _section(md, 3), _section(md, 4), _section(md, 5)
    for r in paper.TABLE2:
        line = re.search(rf"^{r.text_id}\t(.*)$", s3, re.M).group(1).split("\t")
        assert line[0] == r.text
        assert _numbers("\t".join(line[1:])) == [*r.position, r.similarity, r.vocabulary, r.length]
    for key, s in paper.HYPERPARAMETERS.items():
        text = s4 if s.where == "Section 4" else s4[s4.index("**Figure 3**"):]
        assert s.value in _numbers(text.replace("1–100", "1 100")), key
    assert "divided into three clusters" in s5 and "through 6 iterations" in s5
    assert "performs best" in s4 and "12th parameter setting" in s4
