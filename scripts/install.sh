#!/usr/bin/env bash
# Install hmmr into ./.venv: system packages (ffmpeg, libgl1, EGL + Mesa) through apt when run as root,
# then the Python packages with the pins the project needs. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
{ command -v ffmpeg && command -v ffprobe; } >/dev/null 2>&1 || missing+=(ffmpeg)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || missing+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libglib-2.0.so.0' || missing+=(libglib2.0-0)
# headless OpenGL for the mesh overlays of hmmr predict: EGL and Mesa's software rasteriser (llvmpipe)
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || missing+=(libegl1)
ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so.0' || missing+=(libegl-mesa0 libgl1-mesa-dri)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[hmmr] installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[hmmr] missing system packages: ${missing[*]}" >&2
    echo "[hmmr] install them first, e.g.: sudo apt-get install -y ${missing[*]}   (then run this again)" >&2
    exit 1
  fi
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then PY=$c; break; fi
  done
fi
if [ -z "$PY" ]; then
  echo "[hmmr] needs Python 3.11 (torch 2.13 and mediapipe 0.10.14 wheels); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
echo "[hmmr] installing Python packages into .venv (first time: a few minutes)"
.venv/bin/python -m pip install -q -e ".[test]"
echo "[hmmr] installed: $(.venv/bin/hmmr --help >/dev/null && echo 'hmmr CLI ok')"
