"""Sections, equations, figures and tables are labelled as the paper numbers them, everywhere: the
paper has sections 1-7 (no subsections), Eq 1-17, Figures 1-8 and Tables 1-3; chapter 2-4's methods
are in its section 3, CLIP training in 4, Grad-CAM and K-means in 5, the evaluation in 6."""
import json
import re
from pathlib import Path

import pytest

from hzlib import gradcam

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted([*ROOT.glob("hzlib/**/*.py"), *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("book/*.md"),
                *ROOT.glob("tests/*.py"), *ROOT.glob("profiles/**/*.yml"), ROOT / "README.md"])
LIMITS = {"Section": 7, "Eq": 17, "Equation": 17, "Figure": 8, "Table": 3}
LABEL = re.compile(r"\b(Section|Eq|Equation|Figure|Table)s? (\d+)(?:[.–-](\d+))?", re.I)
CHAPTER_SECTION = {"02": 3, "03": 3, "04": 3, "05": 4, "06": 5, "07": 5, "08": 6}
NOT_THE_PAPERS = {("browser.py", "Figure 12"),  # an example of what a search for "Figure 1" must not match
                  ("vit_b16.yml", "Table 20")}  # Radford et al. 2021's table of CLIP geometries


def _text(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_label_outside_the_papers_numbering(path):
    if path.name == "test_numbering.py":
        return
    text = _text(path)
    assert "§" not in text, "write 'section N' as the paper numbers it"
    assert not re.search(r"\bSection \d+\.\d+", text, re.I), "the paper's sections have no subsections"
    for m in LABEL.finditer(text):
        kind = m.group(1).capitalize()
        if (path.name, m.group(0)) in NOT_THE_PAPERS:
            continue
        for n in filter(None, (m.group(2), m.group(3))):
            if kind == "Table" and text[m.end():m.end() + 1].isalpha():
                continue
            assert 1 <= int(n) <= LIMITS[kind], f"{m.group(0)!r} in {path.name}"


@pytest.mark.parametrize("stem", sorted(CHAPTER_SECTION))
def test_each_chapter_names_the_section_it_follows(stem):
    nb = next(ROOT.glob(f"notebooks/{stem}_*.ipynb"))
    first = json.loads(nb.read_text(encoding="utf-8"))["cells"][0]["source"]
    sections = {int(n) for n in re.findall(r"\bSection (\d+)", "".join(first))}
    assert sections == {CHAPTER_SECTION[stem]}, nb.name


def test_gradcam_functions_carry_the_papers_equation_numbers():
    assert [f.__name__ for f in (gradcam.eq8_gradient, gradcam.eq9_channel_weights, gradcam.eq10_class_map,
                                 gradcam.eq11_normalise)] == ["eq8_gradient", "eq9_channel_weights",
                                                              "eq10_class_map", "eq11_normalise"]
    assert not [n for n in dir(gradcam) if re.fullmatch(r"eq\d+_.*", n) and n not in
                {"eq8_gradient", "eq9_channel_weights", "eq10_class_map", "eq11_normalise"}]
