"""scripts/gpu_reference.sh (the GPU reference run of chapters 5-8) and scripts/gpu_wheelhouse.sh, on the CPU.

The end-to-end test runs the script on the smoke profile in a copy of the project, with this test's
Python as it is (HZ_GPU_PYTHON: no install), then again to check that it resumes (slow: minutes)."""
import ast
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import ROOT, cell_python, project_copy

sys.path.insert(0, str(ROOT / "scripts"))
import gpu_check  # noqa: E402

SCRIPT = ROOT / "scripts" / "gpu_reference.sh"


def _copy(dst: Path) -> Path:
    import shutil

    project_copy(dst)
    for name in ("hzlib", "scripts"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _run(root: Path, out: Path, profile: str, **env) -> subprocess.CompletedProcess:
    e = os.environ | {"HZ_GPU_PYTHON": sys.executable, "PYTHONPATH": ""} | env
    return subprocess.run(["bash", str(root / "scripts" / "gpu_reference.sh"), str(out), profile], env=e,
                          capture_output=True, text=True, cwd=root)


def test_check_stops_clearly_when_the_profile_asks_for_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = _run(ROOT, tmp_path / "out", "gpu")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "device: cuda" in res.stderr and "sees no GPU" in res.stderr
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert [s["step"] for s in status["steps"]][:2] == ["install", "check"]
    assert status["steps"][1]["status"] == "failed" and status["check"]["cuda_available"] is False
    assert "step check: failed" in (tmp_path / "out" / "log.txt").read_text()


def test_usage_without_an_output_folder():
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 2 and "usage: bash scripts/gpu_reference.sh OUT" in res.stderr


def _wheelhouse_lists() -> tuple[set[str], set[str]]:
    text = (ROOT / "scripts" / "gpu_wheelhouse.sh").read_text()

    def array(name):
        body = re.search(rf"^{name}=\((.*?)\)", text, re.S | re.M).group(1)
        words = re.sub(r"#.*", "", body).split()
        return {re.split(r"==", w)[0].lower().replace("_", "-") for w in words}

    return array("WHEELS") | array("BUILT"), array("DEVICE")


def _third_party_imports() -> set[str]:
    """Top-level modules that notebooks 05-08 import, directly or through the hzlib modules they reach."""
    names, seen, todo = set(), set(), []

    def visit(tree, package):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    (todo.append(a.name) if a.name.startswith("hzlib") else names.add(a.name.split(".")[0]))
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    mod = ".".join(base + ([mod] if mod else []))
                if mod.startswith("hzlib"):
                    todo.extend([mod] + [f"{mod}.{a.name}" for a in node.names])
                else:
                    names.add(mod.split(".")[0])

    for nb in sorted((ROOT / "notebooks").glob("0[5-8]_*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        visit(ast.parse("\n".join(cell_python(c) for c in cells if c["cell_type"] == "code")), "")
    while todo:
        mod = todo.pop()
        path = ROOT / Path(*mod.split("."))
        file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if mod in seen or not file.is_file():
            continue
        seen.add(mod)
        visit(ast.parse(file.read_text()), mod if file.name == "__init__.py" else mod.rsplit(".", 1)[0])
    return {n for n in names if n and n not in sys.stdlib_module_names}


# imported on the chapters' path but not used by chapters 5-8: chapter 3's figures, the browser test
LAZY_ELSEWHERE = {"pycolmap", "selenium"}


def test_wheelhouse_carries_every_import_of_chapters_5_to_8_the_device_lacks():
    carried, device = _wheelhouse_lists()
    imports = _third_party_imports()
    known = set(gpu_check.CHAPTER_IMPORTS) | set(gpu_check.DEVICE_IMPORTS) | set(gpu_check.RENDER_IMPORTS) \
        | LAZY_ELSEWHERE | {"hzlib"}
    assert imports - known == set(), "new imports on the path of chapters 5-8: add them to scripts/gpu_check.py"
    for module, dist in gpu_check.CHAPTER_IMPORTS.items():
        assert dist.lower() in carried, f"{module} ({dist}) is not in scripts/gpu_wheelhouse.sh"
    for dist in ("torch", "transformers", "scikit-learn", "pandas"):
        assert dist in device


@pytest.mark.slow
def test_smoke_run_end_to_end_then_resume(tmp_path):
    root = _copy(tmp_path / "project")
    out = tmp_path / "out"
    res = _run(root, out, "smoke", HZ_GPU_DEADLINE="3000")  # the device's 560 s is not this machine's
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = (out / "log.txt").read_text()
    for step in ("step install", "step check: ok", "step corpus: ok", "step chapter 05: ok", "step chapter 06: ok",
                 "step chapter 07: ok", "step chapter 08: ok", "step record: ok"):
        assert step in log
    assert json.loads((out / "record.json").read_text())["profile"] == "smoke"
    assert sorted(p.name for p in out.iterdir()) == ["bundle.tar.gz", "log.txt", "record.json", "status.json"]
    with tarfile.open(out / "bundle.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"results/record.json", "check.json", "nvidia-smi.txt", "pip-freeze.txt", "log.txt"} <= names
    for stem in ("05_clip_training", "06_gradcam", "07_clustering", "08_evaluation"):
        assert f"chapters/{stem}.ipynb" in names
    status = json.loads((out / "status.json").read_text())
    assert set(status["chapters"]) == {"05_clip_training", "06_gradcam", "07_clustering", "08_evaluation"}
    assert status["check"]["fasttext_model"].startswith("absent")

    again = _run(root, out, "smoke")  # resumes: every chapter is current
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("current, skipped") == 4
