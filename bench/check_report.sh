#!/usr/bin/env bash
# check_report.sh - renders `presso report` in headless Chromium, to look at.
#
# Writes the report of one or more studies and its scatter alone (--svg),
# checks that the page asks for nothing from the network (its only URL is the
# SVG namespace), and screenshots both with headless Chromium (Debian's
# `chromium`, installed with apt-get when missing and run as root). Look at
# the PNGs: the check is a person's eyes, the script only makes the pictures.
#
# Usage: bash bench/check_report.sh [DB [STUDY ...]]
#   default: build/demo.db and its study "demo" (bash scripts/demo.sh makes them)
#   BUILD=build  OUT=build/report-check  WIDTH=1400  HEIGHT=3000
# Output: $OUT/report.html, $OUT/report.png, $OUT/front.svg, $OUT/front.png
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-$BUILD/report-check}
WIDTH=${WIDTH:-1400}
HEIGHT=${HEIGHT:-3000}
DB=${1:-$BUILD/demo.db}
shift || true
STUDIES=("$@")
[ ${#STUDIES[@]} -eq 0 ] && STUDIES=(demo)

if [ ! -x "$BUILD/presso" ]; then
  echo "check_report: $BUILD/presso is not built (cmake --build $BUILD)" >&2
  exit 1
fi
if [ ! -f "$DB" ]; then
  echo "check_report: no database $DB (bash scripts/demo.sh makes build/demo.db)" >&2
  exit 1
fi
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "check_report: chromium is missing: apt-get install chromium (as root)" >&2
    exit 1
  fi
  echo "check_report: installing chromium" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

mkdir -p "$OUT"
args=()
for s in "${STUDIES[@]}"; do args+=(--study "$s"); done
"$BUILD/presso" report --db "$DB" "${args[@]}" -o "$OUT/report.html" --svg "$OUT/front.svg"

# self-contained: no URL but the SVG namespace, no external resource
urls=$(grep -oE '(https?|ftp)://[^"'"'"' )<]*' "$OUT/report.html" | grep -v '^http://www.w3.org/2000/svg$' || true)
if [ -n "$urls" ] || grep -qiE '<(script|link|img|iframe)[ >]' "$OUT/report.html"; then
  echo "check_report: the report refers to something outside itself:" >&2
  echo "$urls" >&2
  exit 1
fi

shot() { # FILE PNG WIDTH HEIGHT
  local profile
  profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$2" --window-size="$3,$4" \
    "file://$(realpath "$1")" >/dev/null 2>&1 || true
  rm -rf "$profile"
  if [ ! -s "$2" ]; then
    echo "check_report: chromium made no $2" >&2
    exit 1
  fi
}
shot "$OUT/report.html" "$OUT/report.png" "$WIDTH" "$HEIGHT"
shot "$OUT/front.svg" "$OUT/front.png" 1000 600
echo "check_report: look at $OUT/report.png and $OUT/front.png"
