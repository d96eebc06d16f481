import numpy as np
import pytest

from hzlib import paper
from hzlib.corpus import classes as C, describe as D, glyphs as G, render as R


def test_ten_classes_with_the_papers_counts():
    assert len(C.CLASSES) == 10
    assert tuple(C.class_counts().values()) == paper.TABLE1_COUNTS
    assert sum(C.class_counts().values()) == 1850


def test_scaled_counts_keep_two_per_class():
    counts = C.class_counts(0.001)
    assert all(n == 2 for n in counts.values())
    assert sum(C.class_counts(0.5).values()) == pytest.approx(925, abs=5)


def test_overlap_interpolates_between_preference_and_pool():
    spec = C.CLASSES[0]
    pure = C.factor_distribution(spec, "material", 0.0)
    pool = C.pooled("material")
    full = C.factor_distribution(spec, "material", 1.0)
    assert full == pytest.approx(pool)
    w = spec.prefs["material"]
    total = sum(w.values())
    assert pure == pytest.approx({v: w.get(v, 0) / total for v in pool})
    half = C.factor_distribution(spec, "material", 0.5)
    assert half == pytest.approx({v: 0.5 * pure[v] + 0.5 * pool[v] for v in pool})


def test_overlap_out_of_range():
    with pytest.raises(ValueError, match="overlap=1.2"):
        C.factor_distribution(C.CLASSES[0], "form", 1.2)


def test_every_value_possible_in_every_class_with_overlap():
    for spec in C.CLASSES:
        for f in C.FACTORS:
            assert min(C.factor_distribution(spec, f, 0.2).values()) > 0


def test_no_factor_preference_is_unique_to_one_class():
    # each class's top value of each factor is also preferred by some other class: no single factor separates
    for f in C.FACTORS:
        for spec in C.CLASSES:
            top = max(spec.prefs[f], key=spec.prefs[f].get)
            others = [c for c in C.CLASSES if c is not spec and top in c.prefs[f]]
            assert others, f"{spec.key}: {f}={top} is preferred by no other class"


def test_sampling_is_deterministic_and_follows_the_distribution():
    spec = C.BY_KEY["innovation"]
    a = C.sample_factors(spec, 0.3, np.random.default_rng([1, 2]))
    b = C.sample_factors(spec, 0.3, np.random.default_rng([1, 2]))
    assert a == b
    rng = np.random.default_rng(0)
    draws = [C.sample_factors(spec, 0.3, rng)["material"] for _ in range(4000)]
    expected = C.factor_distribution(spec, "material", 0.3)
    for v, p in expected.items():
        assert draws.count(v) / len(draws) == pytest.approx(p, abs=0.03)


def test_classes_are_the_papers_table1_rows_in_order():
    assert [s.row for s in C.CLASSES] == list(paper.TABLE1)
    assert [(s.region, s.period, s.movement, s.aspect) for s in C.CLASSES][3] == (
        "Hong Kong", "End of 20th Century", "Experimental Art", "Urban Culture")
    assert len({s.key for s in C.CLASSES}) == len({s.name_zh for s in C.CLASSES}) == 10


def test_every_preferred_value_can_be_rendered_and_described():
    known = {"style": set(G.STYLES), "form": set(D.FORM), "material": set(R.MATERIALS) & set(D.MATERIAL),
             "glyph_paint": (set(R.PAINTS) | {"none"}) & set(D.GLYPH_PAINT),
             "setting": set(R.SETTINGS) & set(D.SETTING)}
    for spec in C.CLASSES:
        for f in C.FACTORS:
            assert set(spec.prefs[f]) <= known[f], (spec.key, f, set(spec.prefs[f]) - known[f])


def test_class_order_puts_table1_first_then_declared_then_the_rest():
    assert C.class_order(["urban", "tradition", "urban"]) == ["tradition", "urban"]
    assert C.class_order(["b", "urban", "a", "z"], declared=["z", "b"]) == ["urban", "z", "b", "a"]
    assert C.class_order([]) == []
