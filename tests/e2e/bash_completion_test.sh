#!/usr/bin/env bash
# The bash completion svmkit-doc writes at build time
# ($SVMKIT_BUILD_DIR/doc/bash-completion/svmkit), sourced as bash-completion
# would: command names (also after `svmkit help`), the options of `build`,
# the esm commands and their options, file names after -o and for arguments,
# --option=value, deprecated spellings hidden but their values skipped, and
# for every command exactly the options `svmkit CMD --help` lists.
source "$(dirname "$0")/lib.sh"
: "${SVMKIT_BUILD_DIR:?SVMKIT_BUILD_DIR must point at the build tree}"
COMPLETION=$SVMKIT_BUILD_DIR/doc/bash-completion/svmkit
# shellcheck source=/dev/null
source "$COMPLETION"
expect_contains "$(complete -p svmkit)" "-F _svmkit svmkit$"

# complete WORD...: the completions of the last word (sorted, one line).
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _svmkit
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
# expect_completion WANT WORD...
expect_completion() {
  local want=$1 got
  shift
  got=$(complete_words "$@")
  CHECKS=$((CHECKS + 1))
  [ "$got" = "$want" ] || fail "completing '$*': got '$got', want '$want'"
}
help_commands() {
  "$SVMKIT" "$@" --help | awk '/^Subcommands:/ {on = 1; next} /^$/ {on = 0} on {print $1}' | sort
}
help_options() {
  "$SVMKIT" "$@" --help | awk '/^Options:/ {on = 1; next} /^[^ ]/ {on = 0} on && $1 ~ /^-/ {print $1}' |
    tr ',' '\n' | sort
}
oneline() { tr '\n' ' ' | sed 's/ $//'; }

# ---- commands --------------------------------------------------------------------------
all=$(help_commands | oneline)
CHECKS=$((CHECKS + 1))
[[ " $all " == *" build "* && " $all " == *" esm "* ]] || fail "svmkit --help lists no commands: $all"
expect_completion "$all" svmkit ""
expect_completion "build" svmkit bu
expect_completion "esm extract" svmkit e
expect_completion "$(help_commands esm | oneline)" svmkit esm ""
expect_completion "digest display" svmkit esm d
expect_completion "esm" svmkit help es
expect_completion "make" svmkit help esm ma
expect_completion "--help --version" svmkit --
# After a command, words that are not options are its arguments: files.
touch a.img a.key b.pub
mkdir sub
expect_completion "a.img a.key" svmkit inspect a
expect_completion "" svmkit build x

# ---- options -----------------------------------------------------------------------------
expect_completion "--kernel --kernel-load-addr --key --key-passphrase-env --key-passphrase-file" \
  svmkit build --ke
expect_completion "--esm-blob --esm-file --esm-origin --esm-recipient" svmkit build --kernel vmlinux --esm
expect_completion "$(help_options esm make | oneline)" svmkit esm make -
expect_completion "--origin-key" svmkit esm authorize blob.dtb --or
# An option's value: a file name.
expect_completion "a.img a.key" svmkit build -o a
expect_completion "a.img a.key b.pub sub" svmkit build --kernel ""
expect_completion "b.pub" svmkit verify x.img --trusted-key b
expect_completion "a.img a.key" svmkit build --kernel = a
# A flag takes no value: what follows is an option again.
expect_completion "--json" svmkit inspect --json --js
# Deprecated spellings are hidden, as in --help, but their values are skipped.
expect_completion "--public-output" svmkit keygen --pu
expect_completion "--output" svmkit keygen --out new.key --outp
expect_completion "a.img a.key" svmkit keygen --out a

# ---- every command: the options --help lists ----------------------------------------------
for c in $(help_commands); do
  expect_completion "$(help_options "$c" | oneline)" svmkit "$c" -
  for s in $(help_commands "$c"); do
    expect_completion "$(help_options "$c" "$s" | oneline)" svmkit "$c" "$s" -
  done
done
finish
