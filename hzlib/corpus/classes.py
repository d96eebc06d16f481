"""The 10 cultural-attribute classes of the paper's Table 1, as distributions over sculpture factors.

Each class is one row of the paper's Table 1 (``hzlib.paper.TABLE1``: region, historical period, art
movement, cultural aspect and image count, word for word). What a sculpture of that row looks like is
not in the paper, so the rest is OURS: a Chinese rendering of the row, the factor preferences, the
characters and the cue phrases. They are chosen so that each row is something an image and a
description can show (mainland song/kai stelae in temples; neon at night in Hong Kong's streets; Japanese
Mincho and brush fonts on wood in temple gardens; steel and LED light for American digital art; marble
and bronze in a French museum; Korean white porcelain and celadon; mixed scripts and materials in
Singapore; red ochre and dot painting on sandstone in the Australian outback).

Each class prefers a few values of every factor (glyph style, form, material, paint, setting,
characters, lighting...). One parameter, ``overlap`` in [0, 1], mixes every class distribution with
the pooled distribution of all classes: p(v | c) = (1 - overlap) * pref_c(v) + overlap * pool(v).
Preferences overlap between classes on purpose, so no single factor separates the classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import paper

FACTORS = ("style", "form", "material", "glyph_paint", "setting")


@dataclass(frozen=True)
class ClassSpec:
    key: str
    row: paper.Table1Row  # the paper's words and count
    zh: tuple[str, str, str, str]  # OUR Chinese for the row: region, period, movement, aspect
    prefs: dict = field(hash=False)  # factor -> {value: weight}
    chars: str = ""  # characters this tradition favours
    cues: tuple[str, ...] = ()  # Chinese phrases a description may use
    # continuous look/camera preferences: name -> (mean, sd); pooled fallback in CONTINUOUS
    cont: dict = field(default_factory=dict, hash=False)

    region = property(lambda self: self.row.region)
    period = property(lambda self: self.row.period)
    movement = property(lambda self: self.row.movement)
    aspect = property(lambda self: self.row.aspect)
    name_en = property(lambda self: self.row.aspect)  # the paper names its Figure 7 classes by aspect
    region_zh = property(lambda self: self.zh[0])
    period_zh = property(lambda self: self.zh[1])
    movement_zh = property(lambda self: self.zh[2])
    name_zh = property(lambda self: self.zh[3])


# Pooled distributions of the continuous factors: (mean, sd, lo, hi).
CONTINUOUS = {
    "weathering": (0.35, 0.25, 0.0, 1.0),
    "sun_elevation": (40.0, 15.0, 8.0, 80.0),
    "warmth": (0.0, 0.35, -1.0, 1.0),
    "fog": (0.1, 0.1, 0.0, 0.6),
    "camera_elevation": (10.0, 8.0, -5.0, 35.0),
    "camera_azimuth": (0.0, 22.0, -50.0, 50.0),
}

_T = paper.TABLE1
CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec(
        "tradition", _T[0], ("中国", "古代", "传统文化复兴", "历史传统"),
        {"style": {"kai": 3, "song": 2, "strokes": 2}, "form": {"carved": 3, "relief": 2, "slab": 1},
         "material": {"granite": 2, "marble": 2, "sandstone": 1, "bronze": 1}, "glyph_paint": {"red": 2, "gold": 2},
         "setting": {"temple": 3, "courtyard": 2}},
        "福寿德龍礼永真道", ("历史悠久", "传统文化的复兴", "古朴庄重", "碑刻遗风", "承载着历史记忆"),
        {"weathering": (0.6, 0.15), "warmth": (0.2, 0.2)},
    ),
    ClassSpec(
        "innovation", _T[1], ("中国", "近现代", "抽象艺术", "当代创新"),
        {"style": {"hei": 3, "cursive": 1, "fangsong": 1}, "form": {"openwork": 3, "freestanding": 2},
         "material": {"steel": 3, "ceramic": 1}, "glyph_paint": {"none": 2, "white": 2},
         "setting": {"plaza": 3, "museum": 1, "outback": 1}},
        "和新梦天人美", ("抽象的造型", "大胆创新", "解构汉字笔画", "现代设计感", "突破传统"),
        {"weathering": (0.1, 0.1), "sun_elevation": (55, 12)},
    ),
    ClassSpec(
        "diversity", _T[2], ("台湾", "当代", "当代艺术", "文化多元"),
        {"style": {"wenkai": 3, "kai": 1, "running": 1}, "form": {"freestanding": 2, "relief": 1, "slab": 1},
         "material": {"ceramic": 2, "wood": 2, "porcelain": 1},
         "glyph_paint": {"green": 2, "red": 1, "white": 1, "ochre": 1},
         "setting": {"garden": 2, "courtyard": 2}},
        "爱家和春华心", ("多元文化交融", "色彩活泼", "族群与传统并存", "在地文化", "包容开放"),
        {"warmth": (0.2, 0.2)},
    ),
    ClassSpec(
        "urban", _T[3], ("香港", "20世纪末", "实验艺术", "城市文化"),
        {"style": {"hei": 2, "song": 1, "strokes": 1}, "form": {"freestanding": 2, "slab": 2},
         "material": {"steel": 2, "bronze": 1}, "glyph_paint": {"neon": 3, "red": 1},
         "setting": {"street": 4, "plaza": 1}},
        "光明龙福乐海", ("霓虹灯下", "都市夜色", "街头实验", "港式市井气息", "城市的喧嚣"),
        {"fog": (0.15, 0.1), "weathering": (0.3, 0.15)},
    ),
    ClassSpec(
        "japan", _T[4], ("日本", "中世纪", "日本传统艺术", "传统文化"),
        {"style": {"mincho": 3, "soseki": 3, "brush": 1}, "form": {"slab": 2, "boulder": 2, "relief": 1},
         "material": {"wood": 3, "bronze": 1, "granite": 1}, "glyph_paint": {"black": 3, "none": 2},
         "setting": {"garden": 3, "temple": 2}},
        "禅心静道和花真", ("和风", "禅宗意境", "枯山水", "寂静素朴", "侘寂之美"),
        {"warmth": (-0.1, 0.2), "fog": (0.15, 0.1)},
    ),
    ClassSpec(
        "tech_art", _T[5], ("美国", "当代", "数字艺术", "科技与艺术融合"),
        {"style": {"hei": 3, "strokes": 2, "fangsong": 1}, "form": {"openwork": 2, "freestanding": 2, "slab": 1},
         "material": {"steel": 4, "ceramic": 1}, "glyph_paint": {"neon": 3, "white": 1, "none": 1},
         "setting": {"museum": 2, "street": 2, "plaza": 1}},
        "光新梦力飞天", ("数字技术", "光影交互", "科技感", "灯光装置", "虚实结合"),
        {"weathering": (0.05, 0.05), "warmth": (-0.3, 0.2)},
    ),
    ClassSpec(
        "philosophy", _T[6], ("法国", "文艺复兴", "现代主义", "艺术与哲学融合"),
        {"style": {"song": 2, "fangsong": 2, "kai": 1}, "form": {"freestanding": 3, "relief": 1},
         "material": {"marble": 4, "bronze": 2}, "glyph_paint": {"none": 3, "gold": 1},
         "setting": {"museum": 4, "courtyard": 1}},
        "思道真心空无", ("哲思", "古典与现代的对话", "西方雕塑语言", "人文主义精神", "沉思的意味"),
        {"sun_elevation": (35, 10)},
    ),
    ClassSpec(
        "aesthetics", _T[7], ("韩国", "当代", "韩国传统雕塑", "当代审美"),
        {"style": {"song": 2, "kai": 2, "mincho": 1}, "form": {"relief": 2, "slab": 2, "freestanding": 1},
         "material": {"porcelain": 3, "ceramic": 2, "granite": 1}, "glyph_paint": {"none": 2, "black": 1, "white": 1},
         "setting": {"courtyard": 3, "museum": 1}},
        "仁孝信敬美和真", ("韩式简约", "素雅的白瓷", "青瓷般的色泽", "传统与当代并置", "克制含蓄"),
        {"weathering": (0.15, 0.1), "warmth": (-0.1, 0.2)},
    ),
    ClassSpec(
        "crosscultural", _T[8], ("新加坡", "当代", "前卫艺术", "跨文化交流"),
        {"style": {"running": 1, "wenkai": 1, "hei": 1, "kai": 1, "mincho": 1},
         "form": {"openwork": 2, "freestanding": 2},
         "material": {"bronze": 2, "steel": 1, "ceramic": 1, "jade": 1},
         "glyph_paint": {"gold": 2, "red": 2, "green": 1},
         "setting": {"plaza": 2, "garden": 2}},
        "华和友信中海", ("东西方交汇", "多语共存", "跨文化对话", "前卫实验", "南洋风情"),
        {"warmth": (0.1, 0.3)},
    ),
    ClassSpec(
        "environment", _T[9], ("澳大利亚", "当代", "原住民艺术", "环境保护"),
        {"style": {"brush": 2, "cursive": 1, "strokes": 1}, "form": {"boulder": 3, "carved": 1},
         "material": {"sandstone": 3, "wood": 2}, "glyph_paint": {"ochre": 4, "white": 1},
         "setting": {"outback": 4, "mountain": 1, "garden": 1}},
        "山水地天木生真", ("大地色彩", "点画纹样", "原住民图腾", "保护自然", "土地与生命"),
        {"warmth": (0.4, 0.2), "sun_elevation": (55, 10)},
    ),
)

KEYS = tuple(c.key for c in CLASSES)
BY_KEY = {c.key: c for c in CLASSES}


def class_counts(scale: float | None = None, total: int | None = None) -> dict[str, int]:
    """Per-class image counts: the paper's (scale=1), scaled (at least 2 per class, for stratified CV)."""
    if total is not None:
        scale = total / paper.TABLE1_TOTAL
    scale = 1.0 if scale is None else scale
    return {c.key: max(2, int(round(n * scale))) for c, n in zip(CLASSES, paper.TABLE1_COUNTS)}


def pooled(factor: str) -> dict[str, float]:
    """The pooled distribution of a factor: the class preferences averaged with Table 1 weights,
    flattened towards uniform so every value stays possible."""
    weights = np.asarray(paper.TABLE1_COUNTS, float) / paper.TABLE1_TOTAL
    values = sorted({v for c in CLASSES for v in c.prefs[factor]})
    p = np.zeros(len(values))
    for w, c in zip(weights, CLASSES):
        p += w * _normalised(c.prefs[factor], values)
    p = 0.5 * p + 0.5 / len(values)
    return dict(zip(values, p / p.sum()))


def factor_distribution(spec: ClassSpec, factor: str, overlap: float) -> dict[str, float]:
    """p(v | class) = (1 - overlap) * pref + overlap * pooled."""
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap={overlap} must lie in [0, 1]")
    pool = pooled(factor)
    values = list(pool)
    p = (1 - overlap) * _normalised(spec.prefs[factor], values) + overlap * np.array([pool[v] for v in values])
    return dict(zip(values, p / p.sum()))


def all_chars() -> str:
    return "".join(dict.fromkeys("".join(c.chars for c in CLASSES)))


def sample_factors(spec: ClassSpec, overlap: float, rng: np.random.Generator) -> dict:
    """Draw one sample's factors for a class (categorical and continuous)."""
    out: dict = {}
    for f in FACTORS:
        dist = factor_distribution(spec, f, overlap)
        out[f] = str(rng.choice(list(dist), p=list(dist.values())))
    pool_chars = all_chars()
    out["char"] = str(rng.choice(list(pool_chars if rng.random() < overlap else spec.chars)))
    for name, (mu, sd, lo, hi) in CONTINUOUS.items():
        if name in spec.cont and rng.random() >= overlap:
            mu, sd = spec.cont[name]
        out[name] = float(np.clip(rng.normal(mu, sd), lo, hi))
    return out


def _normalised(weights: dict[str, float], values: list[str]) -> np.ndarray:
    p = np.array([float(weights.get(v, 0.0)) for v in values])
    return p / p.sum()


def class_order(labels, declared=()) -> list[str]:
    """The classes that occur in ``labels``, in the study's order: the paper's Table 1 rows first (in
    its order), then the classes an imported corpus declares (``declared``, in their order), then any
    other label, sorted. An imported corpus may use none of the generator's classes."""
    present = set(labels)
    order = list(dict.fromkeys(k for k in (*KEYS, *declared) if k in present))
    return order + sorted(present - set(order))
