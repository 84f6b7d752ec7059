#!/bin/sh
# The compiler launcher of the builds scripts/test.sh, bench/run.sh and
# scripts/mutants.sh make: one ccache (.ccache/ in the repository) for all of
# them, keyed on paths relative to the repository. The mutation check's
# scratch copy is laid out like the repository (build-mutants/src, built in
# build-mutants/src/build), so building it reuses the objects the normal build
# made instead of compiling everything again.
#
# While a mutant is applied, scripts/mutants.sh sets CWCREDS_MUTANT_ACTIVE to
# the mutated file: a deliberate bug may well warn, and -Werror would then
# report it as not compiling. That file is compiled with -Wno-error, a flag
# that also keeps its object apart from anything a -Werror build is served;
# any other compile that fails then (a file including a mutated header) is
# run again with it. Every compile while a mutant is applied is also -O0 -g0
# (the later flags win): those objects only live until the mutant's tests
# have run, and the optimiser and debug info were most of each mutant's time.
# Without ccache, the compiler runs as it is.
repo=$(cd "$(dirname "$0")/.." && pwd)
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_DIR="${CCACHE_DIR:-$repo/.ccache}"
  export CCACHE_BASEDIR="$repo"
  # -g records the build directory; the same object made in another
  # directory (the scratch copy's) is still the same code.
  export CCACHE_NOHASHDIR=1
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-3G}"
  # ccache keys objects on the locale too (it changes the compiler's
  # messages); the image's build stage has none, so neither do we: its
  # build then reuses these objects (Dockerfile, /ccache).
  unset LANG LC_ALL LC_CTYPE LC_MESSAGES
  set -- ccache "$@"
fi
if [ -n "${CWCREDS_MUTANT_ACTIVE:-}" ]; then
  set -- "$@" -O0 -g0
  for arg in "$@"; do
    case $arg in
      */"$CWCREDS_MUTANT_ACTIVE") exec "$@" -Wno-error ;;
    esac
  done
  "$@" 2>/dev/null && exit 0
  exec "$@" -Wno-error
fi
exec "$@"
