"""The 10 cultural-attribute classes of the paper's Table 1, as distributions over sculpture factors.

The paper gives 10 classes (rows of its Table 1, described by region, period, art movement and
cultural aspect) with their image counts, but not enough detail to reproduce the rows' wording; the
region / period / movement / aspect below are OUR reading, chosen to be plausible for Chinese
character sculpture and to differ in ways an image and a text can show. The counts are the paper's.

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
    name_zh: str
    name_en: str
    region: str
    period: str
    movement: str
    aspect: str
    prefs: dict = field(hash=False)  # factor -> {value: weight}
    chars: str = ""  # characters this tradition favours
    cues: tuple[str, ...] = ()  # Chinese phrases a description may use
    # continuous look/camera preferences: name -> (mean, sd); pooled fallback in CONTINUOUS
    cont: dict = field(default_factory=dict, hash=False)


# Pooled distributions of the continuous factors: (mean, sd, lo, hi).
CONTINUOUS = {
    "weathering": (0.35, 0.25, 0.0, 1.0),
    "sun_elevation": (40.0, 15.0, 8.0, 80.0),
    "warmth": (0.0, 0.35, -1.0, 1.0),
    "fog": (0.1, 0.1, 0.0, 0.6),
    "camera_elevation": (10.0, 8.0, -5.0, 35.0),
    "camera_azimuth": (0.0, 22.0, -50.0, 50.0),
}

CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec(
        "imperial", "皇家威仪", "Imperial majesty", "华北（北京）", "明清", "宫廷艺术", "皇权与礼制的庄严",
        {"style": {"song": 2, "kai": 2, "strokes": 2}, "form": {"relief": 3, "freestanding": 1},
         "material": {"marble": 3, "bronze": 2}, "glyph_paint": {"gold": 3, "red": 1},
         "setting": {"temple": 2, "courtyard": 2}},
        "福寿德龍和真", ("皇家气派", "庄重威严", "宫廷风格", "礼制森严", "金碧辉煌"),
        {"weathering": (0.2, 0.15), "sun_elevation": (50, 12)},
    ),
    ClassSpec(
        "literati", "文人雅趣", "Literati elegance", "江南（苏杭）", "宋", "文人书画", "文人的清雅与内省",
        {"style": {"running": 3, "wenkai": 2, "kai": 1}, "form": {"carved": 2, "boulder": 2, "slab": 1},
         "material": {"sandstone": 1, "granite": 1, "wood": 2}, "glyph_paint": {"green": 2, "black": 1, "none": 1},
         "setting": {"garden": 3, "courtyard": 1}},
        "静雅竹梅心水真", ("文人雅趣", "清雅脱俗", "书卷气", "江南园林的意境", "淡泊宁静"),
        {"warmth": (0.2, 0.2), "fog": (0.15, 0.1)},
    ),
    ClassSpec(
        "buddhist", "佛教禅意", "Buddhist devotion", "西北（敦煌、龙门）", "唐", "佛教造像艺术", "佛教信仰与禅意",
        {"style": {"kai": 2, "worn_mincho": 2, "song": 1}, "form": {"carved": 2, "boulder": 1, "relief": 2},
         "material": {"sandstone": 3, "granite": 1}, "glyph_paint": {"red": 2, "gold": 2},
         "setting": {"mountain": 2, "temple": 2}},
        "佛禅心空善山", ("禅意深远", "佛法庄严", "石窟遗风", "清净无为", "慈悲为怀"),
        {"warmth": (0.4, 0.2), "weathering": (0.5, 0.2)},
    ),
    ClassSpec(
        "epigraphic", "金石碑刻", "Epigraphic memory", "中原（河南、陕西）", "汉魏", "金石碑学", "纪念与历史记忆",
        {"style": {"worn_mincho": 3, "song": 1, "mincho": 2}, "form": {"carved": 3, "slab": 2},
         "material": {"granite": 3, "sandstone": 1}, "glyph_paint": {"none": 2, "black": 1, "white": 1},
         "setting": {"museum": 2, "courtyard": 2}},
        "永德道真正礼", ("金石气", "碑刻遗韵", "古朴苍劲", "岁月斑驳", "历史的见证"),
        {"weathering": (0.7, 0.15), "warmth": (-0.1, 0.2)},
    ),
    ClassSpec(
        "folk", "民俗吉祥", "Folk auspiciousness", "岭南（广东、福建）", "清末民初", "民间工艺", "民俗与吉祥寓意",
        {"style": {"brush": 3, "soseki": 2, "hei": 1}, "form": {"freestanding": 2, "openwork": 2},
         "material": {"wood": 2, "ceramic": 2}, "glyph_paint": {"red": 3, "gold": 2},
         "setting": {"courtyard": 2, "plaza": 1}},
        "福寿喜春吉家", ("吉祥喜庆", "民间风味", "红火热闹", "祈福纳祥", "乡土气息"),
        {"warmth": (0.3, 0.2), "sun_elevation": (45, 12)},
    ),
    ClassSpec(
        "modern", "现代公共艺术", "Modern public art", "全国城市", "当代", "现代主义雕塑", "城市精神与现代审美",
        {"style": {"hei": 3, "fangsong": 1, "wenkai": 1}, "form": {"freestanding": 2, "openwork": 2, "slab": 1},
         "material": {"steel": 3, "ceramic": 1, "bronze": 1}, "glyph_paint": {"none": 3, "white": 1},
         "setting": {"plaza": 3, "museum": 1}},
        "和美新梦人天", ("简洁现代", "城市地标", "几何感强", "当代审美", "公共空间"),
        {"weathering": (0.1, 0.1), "sun_elevation": (55, 12), "warmth": (-0.2, 0.2)},
    ),
    ClassSpec(
        "landscape", "山水摩崖", "Landscape inscription", "西南（四川、桂林）", "明", "摩崖石刻", "人与自然的对话",
        {"style": {"running": 2, "cursive": 2, "brush": 1}, "form": {"boulder": 3, "carved": 1},
         "material": {"granite": 2, "sandstone": 2}, "glyph_paint": {"red": 3, "green": 1},
         "setting": {"mountain": 3, "garden": 1}},
        "山水云风天静", ("山水相依", "摩崖题刻", "天人合一", "自然野趣", "云雾缭绕"),
        {"fog": (0.25, 0.12), "weathering": (0.5, 0.2)},
    ),
    ClassSpec(
        "confucian", "儒家礼教", "Confucian ethics", "山东（曲阜）", "明清", "儒家礼制艺术", "伦理教化与崇文重教",
        {"style": {"kai": 2, "strokes": 3, "song": 1}, "form": {"relief": 2, "slab": 2, "carved": 1},
         "material": {"granite": 1, "marble": 2, "bronze": 1}, "glyph_paint": {"red": 2, "gold": 1, "black": 2},
         "setting": {"temple": 2, "courtyard": 1, "museum": 1}},
        "仁义礼智信孝真德", ("崇文重教", "礼仪之邦", "端庄方正", "教化人心", "儒雅敦厚"),
        {"sun_elevation": (40, 12)},
    ),
    ClassSpec(
        "daoist", "道家玄思", "Daoist contemplation", "华中（武当山）", "宋元", "道教艺术", "道法自然的玄思",
        {"style": {"cursive": 3, "soseki": 1, "strokes": 1}, "form": {"boulder": 2, "freestanding": 1, "slab": 1},
         "material": {"jade": 3, "wood": 1, "sandstone": 1}, "glyph_paint": {"none": 2, "green": 1, "gold": 1},
         "setting": {"mountain": 2, "garden": 1, "temple": 1}},
        "道玄真气静山水", ("道法自然", "玄妙空灵", "超然物外", "虚静恬淡", "仙风道骨"),
        {"fog": (0.3, 0.12), "warmth": (-0.1, 0.2)},
    ),
    ClassSpec(
        "diaspora", "海外华韵", "Diaspora heritage", "海外华人社区", "20世纪", "跨文化公共艺术", "文化认同与乡愁",
        {"style": {"hei": 1, "mincho": 2, "wenkai": 2}, "form": {"freestanding": 2, "relief": 1, "openwork": 1},
         "material": {"bronze": 2, "steel": 1, "ceramic": 1, "jade": 1}, "glyph_paint": {"red": 2, "gold": 1, "none": 1},
         "setting": {"plaza": 2, "museum": 1, "courtyard": 1}},
        "华家根福中和春", ("乡愁", "文化认同", "中西合璧", "薪火相传", "海外游子的根"),
        {"weathering": (0.25, 0.15)},
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
