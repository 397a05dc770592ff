#!/usr/bin/env bash
# setup.sh - installs the Debian packages presso's build, tests and demo need
# (clang, its runtime libraries with libFuzzer, and its OpenMP for the fuzzers).
# Idempotent and quiet when everything is already there. Needs root (or sudo)
# only when something is missing.
set -euo pipefail

PACKAGES=(
  gcc make cmake pkg-config
  libsqlite3-dev libcjson-dev libcriterion-dev zlib1g-dev
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev liblapacke-dev
  libpng-dev libjpeg62-turbo-dev
  dataset-fashion-mnist libonnx-testdata valgrind libxml2-dev
  clang libclang-rt-dev libomp-dev
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: missing packages (${missing[*]}) and not root: run as root or install them" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
