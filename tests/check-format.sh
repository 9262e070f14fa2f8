#!/usr/bin/env bash
# tests/check-format.sh — check the C sources against .clang-format
# (clang-format 14): src/, bench/ and tests/unit/, or the files given.
#   bash tests/check-format.sh              every tracked .c/.h file
#   bash tests/check-format.sh FILE...      only these (e.g. a change's files)
#   bash tests/check-format.sh --diff ...   also print what would change
#   bash tests/check-format.sh --fix ...    reformat the files in place
# Exits 0 when every file is formatted, 1 when some is not (each one named
# with the number of lines a reformat would change), 2 when clang-format-14
# is missing (apt-get install clang-format-14). Only --fix changes files
# (and then exits 0 once they are formatted). Regions between
# /* clang-format off */ and /* clang-format on */ are left as written:
# tables whose columns are aligned by hand, usage texts.
set -u -o pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
command -v "$CLANG_FORMAT" >/dev/null ||
    { echo "check-format: $CLANG_FORMAT not found (apt-get install clang-format-14)" >&2; exit 2; }

show_diff=0 fix=0
case "${1:-}" in
--diff) show_diff=1; shift ;;
--fix) fix=1; shift ;;
esac
if [ $# -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(git ls-files -- 'src/*.[ch]' 'bench/*.[ch]' 'tests/unit/*.[ch]')
fi

bad=0 lines=0 checked=0
for f in "${files[@]}"; do
    case "$f" in *.c|*.h) ;; *) continue ;; esac
    [ -f "$f" ] || continue
    checked=$((checked + 1))
    if ! d=$("$CLANG_FORMAT" --style=file "$f" | diff -U0 "$f" -); then
        n=$(grep -c '^-' <<<"$d" || true)
        n=$((n - 1)) # the "--- FILE" line
        if [ "$fix" -eq 1 ]; then
            "$CLANG_FORMAT" --style=file -i "$f" || { echo "check-format: $f: clang-format failed" >&2; exit 1; }
            echo "reformatted: $f ($n lines changed)"
        else
            echo "not formatted: $f ($n lines would change)"
            [ "$show_diff" -eq 1 ] && printf '%s\n' "$d"
        fi
        bad=$((bad + 1))
        lines=$((lines + n))
    fi
done
if [ "$fix" -eq 1 ]; then
    echo "check-format: $checked files, $bad reformatted ($lines lines changed)"
    exit 0
fi
echo "check-format: $checked files, $bad not formatted ($lines lines would change)"
[ "$bad" -eq 0 ]
