#!/usr/bin/env bash
# The GPU reference run of chapters 5-8 in one call: install, check, corpus, run, record into OUT.
#
#   bash scripts/gpu_reference.sh OUT [PROFILE]        # PROFILE: default gpu (profiles/gpu.yml)
#
# On the device (one command, carry ["wheelhouse"] built here by scripts/gpu_wheelhouse.sh):
#   bash scripts/gpu_reference.sh $OUT
#
# Steps, each logged with a UTC timestamp to OUT/log.txt and stdout:
#   install  the carried wheels into .hz-gpu/site (pip --no-index --no-deps --target; PYTHONPATH), the
#            Jupyter kernel `hzlib` into .hz-gpu/jupyter (JUPYTER_PATH). Not a venv: the device's
#            python3 is itself a venv (/opt/torch/.venv), and a venv made from it would not see its torch.
#   check    imports, torch and CUDA, the kernel (scripts/gpu_check.py check); stops with exit 2 when the
#            profile says device: cuda and there is no GPU; nvidia-smi's facts into the bundle.
#   corpus   the profile's corpus: used when complete, else built (needs the renderer: open3d, fonts,
#            hanzi-writer-data; without them it stops and names what is missing).
#   chapters 05 06 07 08, one `hz reproduce --only NN --no-book` each (a current chapter is skipped, so a
#            second call resumes), each under what is left of HZ_GPU_DEADLINE (default 560 s: the device
#            kills a command at 600 s).
#   record   `hz record --out .hz-gpu/work/results`, then OUT gets status.json, record.json and
#            bundle.tar.gz (hz record's folder, the executed chapters, environment, check, log); the device
#            returns at most 8 files of 16 MiB, so everything else travels inside the bundle. The record
#            step also runs when a step fails (trap), and OUT is repacked after every chapter.
#
# FastText: chapter 4 is not run here (its pretraining text, chinese-poetry, is 82 MB), so chapters 5 and 8
# find no artifacts/<profile>/text/fasttext.bin and start CLIP's token embeddings at random, as they
# say in their output; status.json records it (fasttext_model: absent).
#
# Options (environment):
#   HZ_GPU_PYTHON=/path/python   use this Python as it is (no install; its `hzlib` kernel must be registered):
#                                the CPU test runs the smoke profile with the project's .venv
#   HZ_GPU_DEADLINE=seconds      stop starting work after this many seconds (default 560)
#   HZ_GPU_CHAPTERS="05 06 07 08"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

die() { printf '[gpu] error: %s\n' "$*" >&2; [ -n "${OUT:-}" ] && [ -d "$OUT" ] && printf '%s [gpu] error: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$OUT/log.txt"; exit 2; }
[ $# -ge 1 ] || die "usage: bash scripts/gpu_reference.sh OUT [PROFILE]"
OUT=$(mkdir -p "$1" && cd "$1" && pwd) || die "cannot create the output folder $1"
PROFILE=${2:-gpu}
CHAPTERS=(${HZ_GPU_CHAPTERS:-05 06 07 08})
DEADLINE=${HZ_GPU_DEADLINE:-560}
STATE="$ROOT/.hz-gpu"
WORK="$STATE/work"
T0=$SECONDS
mkdir -p "$WORK"
: >"$WORK/steps.tsv"
export HZ_GPU_PROFILE=$PROFILE PYTHONUNBUFFERED=1

log() { printf '%s [gpu] %s\n' "$(date -u +%FT%TZ)" "$*" | tee -a "$OUT/log.txt"; }
step_done() { printf '%s\t%s\t%s\n' "$1" "$2" "$(($SECONDS - $3))" >>"$WORK/steps.tsv"; log "step $1: $2 ($(($SECONDS - $3)) s)"; }
run_logged() { "$@" 2>&1 | tee -a "$OUT/log.txt"; }   # pipefail: the command's status

pack() { "$PY" scripts/gpu_check.py pack "$WORK" "$OUT" 2>&1 | tee -a "$OUT/log.txt" || true; }
finish() {
  local rc=$?
  trap - EXIT
  export HZ_GPU_EXIT=$rc
  if [ -n "${PY:-}" ]; then
    local t=$SECONDS
    log "step record: hz record --out $WORK/results"
    rm -rf "$WORK/results"
    if run_logged "$PY" -m hzlib.cli record --out "$WORK/results"; then step_done record ok "$t"
    else step_done record "failed (no executed chapter?)" "$t"; fi
    cp "$OUT/log.txt" "$WORK/log.txt"
    pack
  fi
  log "done: exit $rc after $(($SECONDS - T0)) s; results in $OUT"
  exit "$rc"
}
trap finish EXIT

log "GPU reference run: profile $PROFILE, chapters ${CHAPTERS[*]}, root $ROOT, out $OUT"

# --- install ---------------------------------------------------------------------------------------
t=$SECONDS
if [ -n "${HZ_GPU_PYTHON:-}" ]; then
  PY=$HZ_GPU_PYTHON
  [ -x "$PY" ] || die "HZ_GPU_PYTHON=$PY is not an executable Python"
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  step_done install "skipped: using $PY as it is (HZ_GPU_PYTHON)" "$t"
else
  PY=$(command -v python3) || die "python3 not found"
  "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
    || die "$PY is Python $("$PY" -c 'import sys; print(sys.version.split()[0])'); the wheelhouse holds cp312 wheels"
  WHEELS="$ROOT/wheelhouse"
  ls "$WHEELS"/*.whl >/dev/null 2>&1 \
    || die "no wheels in $WHEELS: build them where pip reaches PyPI (bash scripts/gpu_wheelhouse.sh wheelhouse) and carry \"wheelhouse\""
  SITE="$STATE/site"
  stamp="$SITE/.hz-wheels"
  want=$(cd "$WHEELS" && ls ./*.whl | sort | sha256sum | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$SITE"
    log "installing $(ls "$WHEELS"/*.whl | wc -l) wheels into $SITE"
    run_logged "$PY" -m pip install -q --no-index --no-deps --no-cache-dir --disable-pip-version-check \
      --target "$SITE" "$WHEELS"/*.whl || die "pip install of the carried wheels failed (see the log)"
    echo "$want" >"$stamp"
  fi
  export PYTHONPATH="$ROOT:$SITE" JUPYTER_PATH="$STATE/jupyter/share/jupyter"
  run_logged "$PY" -m ipykernel install --prefix "$STATE/jupyter" --name hzlib --display-name "Python (hzlib)" \
    || die "registering the Jupyter kernel hzlib failed"
  # figures: a CJK font for Chinese labels (hzlib.plots.CJK_FONTS), carried when the device has none
  for f in "$WHEELS"/fonts/*.tt[fc]; do
    [ -e "$f" ] || continue
    dst="/usr/share/fonts/truetype/lxgw-wenkai/$(basename "$f")"
    [ -e "$dst" ] || { mkdir -p "$(dirname "$dst")" 2>/dev/null && cp "$f" "$dst"; } || log "cannot install font $f"
  done
  step_done install ok "$t"
fi

# --- check -----------------------------------------------------------------------------------------
t=$SECONDS
{ command -v nvidia-smi >/dev/null && nvidia-smi -q || echo "nvidia-smi: not found"; } >"$WORK/nvidia-smi.txt" 2>&1 || true
{ "$PY" -m pip freeze 2>/dev/null || true; } >"$WORK/pip-freeze.txt"
if ! run_logged "$PY" scripts/gpu_check.py check "$PROFILE" "$WORK/check.json"; then
  grep -a '\[gpu\] check failed' "$OUT/log.txt" >&2 || true
  step_done check failed "$t"
  exit 2
fi
step_done check ok "$t"

# --- corpus ----------------------------------------------------------------------------------------
t=$SECONDS
if ! run_logged "$PY" scripts/gpu_check.py corpus "$PROFILE"; then
  grep -a -A12 '\[gpu\] error: the corpus' "$OUT/log.txt" >&2 || true
  step_done corpus failed "$t"
  exit 2
fi
step_done corpus ok "$t"

# --- chapters --------------------------------------------------------------------------------------
for ch in "${CHAPTERS[@]}"; do
  t=$SECONDS
  left=$((DEADLINE - (SECONDS - T0)))
  if [ "$left" -le 10 ]; then
    step_done "chapter $ch" "not started: deadline (call again to resume)" "$t"
    exit 3
  fi
  log "chapter $ch: hz reproduce --profile $PROFILE --only $ch --no-book (at most $left s)"
  set +e
  timeout -k 10 "$left" "$PY" -m hzlib.cli reproduce --profile "$PROFILE" --only "$ch" --no-book 2>&1 | tee -a "$OUT/log.txt"
  rc=${PIPESTATUS[0]}
  set -e
  case $rc in
    0) step_done "chapter $ch" ok "$t" ;;
    124|137) step_done "chapter $ch" "stopped at the deadline (call again to resume)" "$t"; exit 3 ;;
    *) step_done "chapter $ch" "failed (exit $rc)" "$t"; exit 1 ;;
  esac
  cp "$OUT/log.txt" "$WORK/log.txt"
  pack
done
log "all chapters done"
