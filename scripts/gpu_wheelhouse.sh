#!/usr/bin/env bash
# Build, HERE (where pip reaches PyPI), the wheels that the GPU machine lacks for chapters 5-8:
#
#   bash scripts/gpu_wheelhouse.sh wheelhouse      # then carry ["wheelhouse"] with scripts/gpu_reference.sh
#
# The device (KINDS.md: Python 3.12.3 at /opt/torch/.venv, torch, transformers, timm, scikit-learn,
# scikit-image, seaborn, pandas, opencv-python-headless, tabulate, fonttools, requests, click, aiohttp,
# attrs, psutil, pygments...) reaches no registry. Its missing pieces, pinned as in constraints.txt:
# papermill and the Jupyter kernel machinery (nbclient, jupyter_client, ipykernel, IPython and their
# needs), myst-nb (the chapters' `glue`; at run time it imports only IPython, nbformat and docutils, so its
# Sphinx-side requirements are left out and every wheel is installed with --no-deps), jieba (the
# tokeniser), fasttext (hzlib.text imports it), OpenCC, grad-cam and ttach. jieba, fasttext and grad-cam
# publish no cp312 wheel: they are built here with a Python 3.12 (PY312, else python3.12, else pyenv's).
# Every wheel's requirements are checked against the wheelhouse and the device's packages below.
# A CJK font for the figures' Chinese labels is copied into wheelhouse/fonts when this machine has it.
#
# Measured 2026-12-05: 40 wheels 40.7 MiB (jieba 18.4, debugpy 5.1, fasttext 5.0, jedi 4.7) + the LXGW WenKai
# font 15.0 MiB = 55.7 MiB (the working tree adds 1.6 MiB;
# the device takes 64 MiB in all).
#
# Not carried, measured: the corpus renderer (open3d-cpu 0.20.0 wheel 100 MiB, its library 218 MB, 34 MiB
# as xz; plus manifold3d, hanzipy 7.4 MiB, char-similar, fonts, hanzi-writer-data 13 MiB) and a rendered
# gpu corpus (1,850 PNGs at 320 px, about 300 MiB). Neither fits beside the wheels, so the corpus must
# already be on the device (see README, "The GPU reference run").
set -euo pipefail
cd "$(dirname "$0")/.."
die() { printf '[wheelhouse] error: %s\n' "$*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: bash scripts/gpu_wheelhouse.sh DIR"
DIR=$1
PIP=${PIP:-python3 -m pip}

# cp312 manylinux or pure-Python wheels on PyPI (pinned as constraints.txt pins them)
WHEELS=(
  papermill==2.7.0 entrypoints==0.4.2 tenacity==9.2.1
  nbclient==0.11.0 nbformat==5.11.1 fastjsonschema==2.22.3 jsonschema==4.26.0 jsonschema-specifications==2025.9.1
  referencing==0.37.0 rpds-py==2026.9.1
  jupyter_client==8.10.0 jupyter_core==5.9.1 platformdirs==4.14.8 traitlets==5.16.1 pyzmq==27.3.0 tornado==6.6.1
  ipykernel==7.4.0 comm==0.2.3 debugpy==1.8.22 matplotlib-inline==0.2.2 nest-asyncio2==1.7.4
  ipython==9.18.1 ipython_pygments_lexers==1.1.1 prompt_toolkit==3.0.53 wcwidth==0.9.4 stack-data==0.6.3
  asttokens==3.0.2 executing==2.3.0 pure_eval==0.2.4 pexpect==4.9.0 ptyprocess==0.7.0 jedi==0.20.1 parso==0.8.7
  myst-nb==1.4.0 docutils==0.21.2
  OpenCC==1.4.2 ttach==0.0.3
)
# sdist only on PyPI: built here as cp312 wheels
BUILT=(fasttext==0.9.3 jieba==0.42.1 grad-cam==1.5.7)
# on the device already (KINDS.md), by distribution name: a requirement on one of these is met there
DEVICE=(torch torchvision transformers tokenizers safetensors huggingface-hub numpy scipy pandas scikit-learn
  scikit-image seaborn matplotlib opencv-python-headless pillow pyyaml tqdm threadpoolctl tabulate fonttools
  requests click aiohttp attrs psutil pygments pybind11 packaging typing-extensions python-dateutil six setuptools jinja2
  markupsafe importlib-metadata zipp pip urllib3 certifi idna charset-normalizer)
# requirements that are declared but not needed on this path, with the reason
UNNEEDED="sphinx myst-parser jupyter-cache pyyaml-include"   # myst-nb's Sphinx side; glue needs none of it
OPENCV_ALIAS="opencv-python"   # grad-cam asks for opencv-python; the device's opencv-python-headless is cv2

PLAT=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64
  --platform manylinux_2_28_x86_64 --platform any)
mkdir -p "$DIR"
echo "[wheelhouse] downloading ${#WHEELS[@]} wheels into $DIR"
$PIP download -q --no-deps --disable-pip-version-check "${PLAT[@]}" -d "$DIR" "${WHEELS[@]}"

py312=""
for c in ${PY312:-} python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
  "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null && { py312=$c; break; }
done
[ -n "$py312" ] || die "no Python 3.12 to build ${BUILT[*]} (set PY312=/path/to/python3.12)"
for spec in "${BUILT[@]}"; do
  name=${spec%%==*}; stem=${name//-/_}
  ls "$DIR"/"$stem"-"${spec##*==}"-*.whl >/dev/null 2>&1 && continue
  echo "[wheelhouse] building $spec with $py312"
  "$py312" -m pip wheel -q --no-deps --disable-pip-version-check -w "$DIR" "$spec"
done

mkdir -p "$DIR/fonts"
font=/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf   # hzlib.plots.CJK_FONTS[0]
[ -f "$font" ] && cp "$font" "$DIR/fonts/" || echo "[wheelhouse] note: $font not here; figures' Chinese labels will lack a font"

# every requirement of every wheel (markers for Linux, CPython 3.12) is in the wheelhouse or on the device
DEVICE="${DEVICE[*]}" UNNEEDED="$UNNEEDED" ALIAS="$OPENCV_ALIAS" python3 - "$DIR" <<'EOF'
import os, re, sys, zipfile
from pathlib import Path
from email.parser import Parser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canon

env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
       "os_name": "posix", "implementation_name": "cpython", "platform_machine": "x86_64", "extra": ""}
wheels = sorted(Path(sys.argv[1]).glob("*.whl"))
have = {canon(w.name.split("-")[0]) for w in wheels}
device = {canon(n) for n in os.environ["DEVICE"].split()}
ok = device | {canon(n) for n in os.environ["UNNEEDED"].split()} | {canon(os.environ["ALIAS"])}
names = [w.name.split("-")[0] for w in wheels]
dupes = {n for n in names if names.count(n) > 1}
missing = []
for w in wheels:
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if re.match(r"[^/]+\.dist-info/METADATA$", n))
        msg = Parser().parsestr(z.read(meta).decode())
    for line in msg.get_all("Requires-Dist") or []:
        r = Requirement(line)
        if r.marker and not r.marker.evaluate(env):
            continue
        if canon(r.name) not in have | ok:
            missing.append(f"{w.name}: {line}")
if dupes:
    sys.exit(f"[wheelhouse] error: several versions of {sorted(dupes)}")
if missing:
    sys.exit("[wheelhouse] error: requirements neither carried nor on the device:\n  " + "\n  ".join(missing))
print(f"[wheelhouse] closure ok: {len(wheels)} wheels; every requirement is carried or on the device")
EOF
du -sh "$DIR" "$DIR"/fonts | sed 's/^/[wheelhouse] /'
