#!/usr/bin/env bash
# The man pages svmkit-doc writes at build time ($SVMKIT_BUILD_DIR/doc/man)
# against the CLI they describe: a page for svmkit and for every command and
# esm command `--help` lists, and no other; each renders with groff and man
# without a warning, has the sections a page needs, lists exactly the options
# `svmkit CMD --help` lists, the exit-code table `svmkit help` prints, and its
# deprecated spellings are CHANGELOG.md's. The checker is first
# shown a page with one option dropped, so that it is known to see drift.
source "$(dirname "$0")/lib.sh"
: "${SVMKIT_BUILD_DIR:?SVMKIT_BUILD_DIR must point at the build tree}"
MAN=$SVMKIT_BUILD_DIR/doc/man

# help_commands PATH...: the subcommands `svmkit PATH --help` lists.
help_commands() {
  "$SVMKIT" "$@" --help | awk '/^Subcommands:/ {on = 1; next} /^$/ {on = 0} on {print $1}'
}
# help_options PATH...: every option name `svmkit PATH --help` lists.
help_options() {
  "$SVMKIT" "$@" --help | awk '/^Options:/ {on = 1; next} /^[^ ]/ {on = 0} on && $1 ~ /^-/ {print $1}' |
    tr ',' '\n' | sort -u
}
# render PAGE: the page as text, no overstriking.
render() { groff -man -Tascii -P-cbou "$1" 2>/dev/null; }
# section TEXT NAME: the lines of one section of a rendered page.
section_of() { awk -v s="$2" '/^[^ ]/ {on = ($0 == s); next} on' <<<"$1"; }
# page_options TEXT: every option name the OPTIONS section heads a paragraph
# with ("-o, --output TEXT"; a short one shares its line with the text).
page_options() {
  section_of "$1" OPTIONS | grep -E '^       -' |
    awk '{for (i = 1; i <= NF && $i ~ /^-/; i++) {t = $i; sub(/,$/, "", t); print t}}' | sort -u
}

# same_options PAGE PATH...: the page's options are --help's, both ways.
same_options() {
  local page=$1
  shift
  local want got
  want=$(help_options "$@")
  got=$(page_options "$(render "$page")")
  [ -n "$want" ] && [ "$want" = "$got" ]
}

# ---- the checker sees drift ------------------------------------------------------
awk '/^\.TP$/ {n++} n == 2 && /^\.TP$/ {skip = 2} skip > 0 {skip--; next} {print}' \
  "$MAN/svmkit-build.1" >"$WORK/drifted.1"
CHECKS=$((CHECKS + 1))
if same_options "$WORK/drifted.1" build; then fail "the checker misses an option dropped from a page"; fi
CHECKS=$((CHECKS + 1))
same_options "$MAN/svmkit-build.1" build || fail "svmkit-build.1's options are not build --help's"

# ---- one page per command ----------------------------------------------------------
paths=("")
for c in $(help_commands); do
  paths+=("$c")
  for s in $(help_commands "$c"); do paths+=("$c $s"); done
done
CHECKS=$((CHECKS + 1))
[ "${#paths[@]}" -ge 18 ] || fail "only ${#paths[@]} commands found in --help"
expected_pages=()
deprecated_in_pages=()
exit_table=$("$SVMKIT" help | awk '/^Exit codes:/ {on = 1; next} on && NF {print $1, $2}')
CHECKS=$((CHECKS + 1))
[ "$(wc -l <<<"$exit_table")" -ge 11 ] || fail "svmkit help prints no exit-code table: $exit_table"

for path in "${paths[@]}"; do
  read -ra words <<<"$path"
  name=svmkit${path:+-${path// /-}}
  page=$MAN/$name.1
  expected_pages+=("$name.1")
  CHECKS=$((CHECKS + 1))
  if [ ! -s "$page" ]; then fail "no page $name.1 for 'svmkit $path'"; continue; fi

  warnings=$(groff -man -ww -z "$page" 2>&1)
  CHECKS=$((CHECKS + 1))
  [ -z "$warnings" ] || fail "groff warns about $name.1: $warnings"
  # As lintian reads a page: at terminal width, warnings on.
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
  CHECKS=$((CHECKS + 1))
  [ -z "$warnings" ] || fail "man --warnings on $name.1: $warnings"
  expect_exit 0 env MANWIDTH=80 man -P cat -l "$page"
  expect_contains "$OUT" "^NAME"
  text=$(render "$page")
  for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    CHECKS=$((CHECKS + 1))
    grep -qx "$s" <<<"$text" || fail "$name.1 has no $s section"
  done
  expect_contains "$(section_of "$text" NAME)" "^ +$name - [A-Z]"
  expect_contains "$(section_of "$text" SYNOPSIS)" "svmkit${path:+ $path}"
  expect_contains "$(section_of "$text" EXAMPLES)" "^ +svmkit "

  CHECKS=$((CHECKS + 1))
  want=$(help_options "${words[@]}")
  got=$(page_options "$text")
  [ "$want" = "$got" ] || fail "$name.1 and 'svmkit $path --help' list different options:
$(diff <(echo "$want") <(echo "$got"))"

  status=$(section_of "$text" "EXIT STATUS")
  while read -r code codename; do
    CHECKS=$((CHECKS + 1))
    grep -qE "^ +$code +$codename: " <<<"$status" || fail "$name.1's EXIT STATUS lacks $code $codename"
  done <<<"$exit_table"

  # Deprecated spellings: hidden from --help, listed here (io_safety_test
  # checks that they work and warn).
  for old in $(section_of "$text" "DEPRECATED OPTIONS" | sed -nE 's/^       (-[-a-z0-9]+).*/\1/p'); do
    CHECKS=$((CHECKS + 1))
    ! grep -qx -- "$old" <<<"$want" || fail "$name.1: deprecated $old is in --help"
    deprecated_in_pages+=("$path $old")
  done
done
# The pages' deprecated spellings are CHANGELOG.md's, both ways.
CHECKS=$((CHECKS + 1))
want=$(sed -n '/^### Deprecated/,/^#/p' "$SVMKIT_SOURCE_DIR/CHANGELOG.md" | sed -nE 's/^- `([^`]+)`.*/\1/p' | sort)
got=$(printf '%s\n' "${deprecated_in_pages[@]}" | sort)
[ -n "$want" ] && [ "$want" = "$got" ] ||
  fail "deprecated options in the pages and CHANGELOG.md differ: $(diff <(echo "$want") <(echo "$got"))"

# ---- no page without a command -------------------------------------------------------
CHECKS=$((CHECKS + 1))
want=$(printf '%s\n' "${expected_pages[@]}" | sort)
got=$(ls "$MAN" | sort)
[ "$want" = "$got" ] || fail "pages and commands differ: $(diff <(echo "$want") <(echo "$got"))"

# svmkit.1 names every command's page and the environment.
text=$(render "$MAN/svmkit.1")
for c in $(help_commands); do expect_contains "$(section_of "$text" COMMANDS)" "svmkit-$c\(1\)"; done
expect_contains "$(section_of "$text" ENVIRONMENT)" "SVMKIT_PKCS11_PIN"
finish
