#!/usr/bin/env bash
# check_layers.sh - fails when an #include in presso's sources points up the
# declared layer order (or sideways into a folder it may not use).
#
# Usage: bash scripts/check_layers.sh [ROOT]     check the tree at ROOT (default: this repository)
#        bash scripts/check_layers.sh --self-test  show that an upward include is caught
#
# The layers, lowest first, and what each may include besides its own folder.
# Every folder a layer may use must come before it in LAYERS (checked below),
# so the dependencies form one downward order. tests/ and bench/ sit on top and
# may use everything; they are not checked. The build runs this check
# (CMakeLists.txt, target check_layers) and so does tests/test_layers.c.
#
# An include "a/b.h" is resolved as the compiler does: beside the including
# file, then under src/, then under the root. A quoted include that resolves
# nowhere is an error too (a header that moved), except the bindings generated
# at build time (GENERATED).
set -euo pipefail

LAYERS=(src/base src/kernels src/model src/data src/quant src/transform src/train
	src/format src/config evaluators db search src/cli)
declare -A MAY_USE=(
	[src/base]=""
	[src/kernels]="src/base"
	[src/model]="src/base src/kernels"
	[src/data]="src/base src/model"
	[src/quant]="src/base src/kernels src/model src/data"
	[src/transform]="src/base src/model src/data src/quant"
	[src/train]="src/base src/kernels src/model src/data src/quant src/transform"
	[src/format]="src/base src/model src/quant"
	[src/config]="src/base src/data src/quant"
	[evaluators]="src/base src/kernels src/model src/data src/quant src/transform src/train src/config"
	[db]="src/base"
	[search]="src/base src/model src/data src/quant src/transform src/train src/config db evaluators"
	[src/cli]="src/base src/kernels src/model src/data src/quant src/transform src/train src/format src/config evaluators db search"
)
GENERATED=(onnx.pb-c.h)

self_test() {
	local tmp rc=0 out
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	mkdir -p "$tmp/src/base" "$tmp/src/model" "$tmp/search"
	printf '#include "base/status.h"\n' >"$tmp/src/model/graph.c"
	printf '#include "search/driver.h"\n' >"$tmp/src/base/status.c"
	: >"$tmp/src/base/status.h"
	: >"$tmp/search/driver.h"
	out=$(bash "$0" "$tmp" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ] || ! grep -q 'src/base/status.c:1: includes "search/driver.h"' <<<"$out"; then
		echo "check_layers: self-test failed: an upward include was not reported" >&2
		echo "$out" >&2
		return 1
	fi
	echo "check_layers: self-test ok (an upward include is refused):"
	echo "$out"
}

if [ "${1:-}" = "--self-test" ]; then
	self_test
	exit
fi
ROOT=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$ROOT"

# The declared order must itself point down.
declare -A RANK=()
for i in "${!LAYERS[@]}"; do RANK[${LAYERS[$i]}]=$i; done
status=0
for layer in "${LAYERS[@]}"; do
	for used in ${MAY_USE[$layer]}; do
		if [ -z "${RANK[$used]+x}" ] || [ "${RANK[$used]}" -ge "${RANK[$layer]}" ]; then
			echo "check_layers: $layer may use $used, which is not below it in LAYERS" >&2
			status=1
		fi
	done
done

# The layer a folder belongs to: the longest layer that is a prefix of it.
layer_of() {
	local dir=$1 best="" l
	for l in "${LAYERS[@]}"; do
		if [ "$dir" = "$l" ] || [[ "$dir" == "$l"/* ]]; then
			[ ${#l} -gt ${#best} ] && best=$l
		fi
	done
	printf '%s' "$best"
}

n_files=0
while IFS= read -r -d '' file; do
	dir=$(dirname "$file")
	from=$(layer_of "$dir")
	[ -n "$from" ] || continue
	n_files=$((n_files + 1))
	while IFS=: read -r line inc; do
		inc=${inc#*\"}
		inc=${inc%%\"*}
		if [ -f "$dir/$inc" ]; then
			target=$(dirname "$dir/$inc")
		elif [ -f "src/$inc" ]; then
			target=$(dirname "src/$inc")
		elif [ -f "$inc" ]; then
			target=$(dirname "$inc")
		else
			generated=0
			for g in "${GENERATED[@]}"; do [ "$inc" = "$g" ] && generated=1; done
			if [ $generated -eq 0 ]; then
				echo "$file:$line: includes \"$inc\", which is no header of this tree" >&2
				status=1
			fi
			continue
		fi
		to=$(layer_of "$target")
		[ "$to" = "$from" ] && continue
		ok=0
		for used in ${MAY_USE[$from]}; do [ "$used" = "$to" ] && ok=1; done
		if [ $ok -eq 0 ]; then
			echo "$file:$line: includes \"$inc\" from ${to:-an unlayered folder}, which $from may not use" \
				"(layers, lowest first: ${LAYERS[*]}; $from may use: ${MAY_USE[$from]:-nothing})" >&2
			status=1
		fi
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find src evaluators db search -name '*.[ch]' -print0 2>/dev/null | sort -z)

if [ $status -ne 0 ]; then
	echo "check_layers: an include points up or sideways; move the code down a layer or the include out (src/README.md)" >&2
	exit 1
fi
echo "check_layers: $n_files files, every include points down"
