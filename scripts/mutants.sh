#!/usr/bin/env bash
# Mutation check: does the suite notice when a promise of the README breaks?
#
# Each mutant below is one deliberate bug: a file, a one-line sed script (or a
# small patch), and the CTest selection whose tests must fail because of it.
# The mutants are applied one at a time to a scratch copy of the working tree
# (build-mutants/src, never the real tree), built in build-mutants/src/build
# (kept between runs, so only the mutated file and the links are rebuilt) as
# scripts/test.sh builds the real tree and through the same ccache
# (scripts/ccache-launcher.sh): after a normal build, the copy's first build
# only links. Then the selected tests are run. First the selected tests
# run once on the unmutated copy: a test that fails without a mutant would
# "catch" everything.
#
#   bash scripts/mutants.sh              # quick mode: today's sample, every folder touched (CI, scripts/test.sh)
#   bash scripts/mutants.sh --all        # every mutant (tens of minutes)
#   bash scripts/mutants.sh NAME...      # the named mutants
#   bash scripts/mutants.sh --list       # names, folders, files and selections
#   bash scripts/mutants.sh --sample     # the names quick mode runs today, without running them
#
# Quick mode runs the mutants whose position i in the whole list has
# i % 7 == day % 7, where day is the day number (days since 1970, UTC;
# CWCREDS_MUTANTS_DAY overrides it), plus, for each folder none of those is
# in, its mutant at position day % (the folder's count): every folder is
# touched each day, over any 7 days every mutant runs, and about 16 run a day.
# The day is printed, so a failure is reproduced with that variable.
#
# Prints `caught` or `survived` per mutant and a final line
# `mutants: N caught, M survived, K broken` (broken: the edit no longer
# applies, or the mutant does not compile); exits non-zero unless every
# mutant run was caught.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/progress.sh
repo=$PWD

names=() files=() edits=() selections=() groups=()
group=""

# mutant NAME FILE EDIT SELECTION
#   EDIT       a sed script for `sed -i -e` on FILE, or @PATH: a patch (-p1)
#              relative to the repository root
#   SELECTION  ctest arguments choosing the tests that must catch it
mutant() {
  names+=("$1") files+=("$2") edits+=("$3") selections+=("$4") groups+=("$group")
}

# Integration test selections (one CTest test per file).
hostile='-R ^integration\.test_hostile_clients$'
serve='-R ^integration\.test_serve$'
startup='-R ^integration\.test_startup_shutdown$'
clocks='-R ^integration\.test_clocks$'
unit='-L ^unit$'

# The mutants, one file per source folder (scripts/mutants/FOLDER.sh); the
# folder is the mutant's group for quick mode.
for group_file in scripts/mutants/*.sh; do
  group=$(basename "$group_file" .sh)
  # shellcheck source=/dev/null
  source "$group_file"
done

list_mutants() {
  local i
  for i in "${!names[@]}"; do
    printf '%-34s %-9s %-40s %s\n' "${names[$i]}" "${groups[$i]}" "${files[$i]}" "${selections[$i]}"
  done
}

chosen=()
sample_only=no
if [[ "${1:-}" == --sample ]]; then
  sample_only=yes
  shift
fi
case "${1:-}" in
  --list) list_mutants; exit 0 ;;
  --all) chosen=("${!names[@]}") ;;
  "")
    day=${CWCREDS_MUTANTS_DAY:-$(($(date -u +%s) / 86400))}
    echo "mutants: quick mode, day $day (CWCREDS_MUTANTS_DAY=$day bash scripts/mutants.sh repeats this sample)"
    # Every 7th mutant of the whole list, starting at day % 7; then, for a
    # folder none of those is in, its mutant at position day % its size.
    declare -A touched=()
    for i in "${!names[@]}"; do
      if ((i % 7 == day % 7)); then
        chosen+=("$i")
        touched[${groups[$i]}]=1
      fi
    done
    declare -A members=()
    for i in "${!names[@]}"; do members[${groups[$i]}]+="$i "; done
    for g in "${!members[@]}"; do
      [[ -n ${touched[$g]:-} ]] && continue
      read -r -a in_group <<<"${members[$g]}"
      chosen+=("${in_group[$((day % ${#in_group[@]}))]}")
    done
    ;;
  *)
    for want in "$@"; do
      found=
      for i in "${!names[@]}"; do [[ ${names[$i]} == "$want" ]] && chosen+=("$i") && found=1; done
      [[ -n $found ]] || { echo "mutants: no mutant named '$want' (--list)" >&2; exit 2; }
    done
    ;;
esac

if [[ $sample_only == yes ]]; then
  for i in "${chosen[@]}"; do echo "${names[$i]} (${groups[$i]})"; done
  exit 0
fi

scratch=${CWCREDS_MUTANTS_DIR:-$repo/build-mutants}
# The copy's build directory sits inside it, where build/ sits in the
# repository: the paths ccache sees are then the normal build's.
src=$scratch/src build=$scratch/src/build logs=$scratch/logs
mkdir -p "$src" "$build" "$logs"
started=$SECONDS

# Mirror the working tree (tracked and new files, committed or not) into the
# scratch copy, touching only files that differ so the build stays incremental.
echo "mutants: copying the working tree to $src"
git -C "$repo" ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [[ -f $repo/$f ]] || continue
  if ! cmp -s "$repo/$f" "$src/$f"; then
    mkdir -p "$(dirname "$src/$f")"
    cp "$repo/$f" "$src/$f"
  fi
done

jobs=$(nproc)
# build_copy LOG TARGET...: only what the selected tests run (the unit tests
# or the binary), not the benchmark's simulator.
build_copy() {
  local log=$1
  shift
  run_with_progress "$log" '^\[ *[0-9]+%\]' cmake --build "$build" -j "$jobs" --target "$@"
}
# The target a selection's tests run.
target_of() {
  case $1 in
    *integration*) echo cwcreds ;;
    *) echo unit_tests ;;
  esac
}
echo "mutants: building the copy ($build; seconds through ccache after the normal build, about 4 minutes cold)"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=CI -DCWCREDS_WERROR=ON \
  -DCMAKE_CXX_COMPILER_LAUNCHER="$repo/scripts/ccache-launcher.sh" \
  >"$logs/configure.log" 2>&1 || { cat "$logs/configure.log"; exit 1; }
if ! build_copy "$logs/build.log" cwcreds unit_tests; then
  tail -30 "$logs/build.log"
  echo "mutants: the unmutated copy does not build" >&2
  exit 1
fi

# run_selection LOG FILE SELECTION...: FILE is the mutated source ("" for the
# baseline).
run_selection() {
  local log=$1 file=$2
  shift 2
  if [[ "$*" == "$unit" ]]; then
    # The doctest binary itself: one process for every case, where CTest
    # starts one per case (seconds per mutant); the same cases, and a
    # failure names its case as "TEST CASE:". With a mutant, the mutated
    # file's own tests (tests/unit/.../NAME_test.cpp) run first and every
    # run stops at its first failure: most mutants are caught in a second,
    # not after the suite's ten seconds of timeouts. A mutant they miss
    # still meets every other case. The subshell keeps the shell's
    # "Segmentation fault" report in the log (`exit` keeps bash from exec'ing
    # the last command, so the subshell, not this shell, reports it).
    local tests=$build/tests/unit_tests
    if [[ -z $file ]]; then
      (timeout 600 "$tests") >"$log" 2>&1
      return
    fi
    local own="*/$(basename "$file" .cpp)_test.cpp"
    (timeout 600 "$tests" --abort-after=1 --source-file="$own"; exit) >"$log" 2>&1 &&
      (timeout 600 "$tests" --abort-after=1 --source-file-exclude="$own"; exit) >>"$log" 2>&1
    return
  fi
  # shellcheck disable=SC2068 # the selection is several ctest words
  ctest --test-dir "$build" --no-tests=error --output-on-failure -j "$jobs" $@ >"$log" 2>&1
}

# The selected tests must pass before anything is mutated. scripts/test.sh
# sets CWCREDS_MUTANTS_BASELINE_PASSED when its normal stage has just run the
# unit and integration tests on these very sources, built with the same
# flags (and fails if they did not pass): baselines would only repeat that.
declare -A baseline_done=()
for i in "${chosen[@]}"; do
  sel=${selections[$i]}
  [[ -n ${baseline_done[$sel]:-} ]] && continue
  if [[ -n ${CWCREDS_MUTANTS_BASELINE_PASSED:-} ]]; then
    echo "mutants: baseline: ctest $sel passed in the normal stage"
    baseline_done[$sel]=1
    continue
  fi
  baseline_done[$sel]=1
  echo "mutants: baseline: ctest $sel (seconds to a minute)"
  if ! run_selection "$logs/baseline.log" "" "$sel"; then
    grep -E "Failed|\*\*\*|tests passed" "$logs/baseline.log" | tail -15
    echo "mutants: the unmutated copy fails 'ctest $sel': fix that first" >&2
    exit 1
  fi
done

caught=0 survived=0 broken=0
echo "mutants: ${#chosen[@]} mutants, each rebuilt and tested (mostly 5 to 20 s each, one line per mutant)"
for i in "${chosen[@]}"; do
  name=${names[$i]} file=${files[$i]} edit=${edits[$i]} sel=${selections[$i]}
  t0=$SECONDS
  if [[ $edit == @* ]]; then
    (cd "$src" && patch -s -p1 <"$repo/${edit#@}") >"$logs/$name.log" 2>&1 || true
  else
    sed -i -e "$edit" "$src/$file"
  fi
  if cmp -s "$repo/$file" "$src/$file"; then
    result="broken (the edit no longer applies to $file)"
    broken=$((broken + 1))
  elif ! CWCREDS_MUTANT_ACTIVE=$file build_copy "$logs/$name.log" "$(target_of "$sel")"; then
    result="broken (does not compile; $logs/$name.log)"
    broken=$((broken + 1))
  elif run_selection "$logs/$name.log" "$file" "$sel"; then
    result="survived"
    survived=$((survived + 1))
  else
    failing=$( (sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (\(Failed\|Timeout\|SEGFAULT\|Subprocess aborted\|Exception\)).*/\1/p' \
      "$logs/$name.log"; sed -n 's/^TEST CASE: *//p' "$logs/$name.log" | sort -u) | head -3 | paste -sd, -)
    result="caught (${failing:-see $logs/$name.log})"
    caught=$((caught + 1))
  fi
  # Undo: the real file back, newer than its object so it is rebuilt.
  if [[ $edit == @* ]]; then
    while read -r patched; do
      cp "$repo/$patched" "$src/$patched" && touch "$src/$patched"
    done < <(sed -n 's|^+++ b/\(.*\)|\1|p' "$repo/${edit#@}")
  fi
  cp "$repo/$file" "$src/$file"
  touch "$src/$file"
  printf 'mutant %-34s %s  [%ss, ctest %s]\n' "$name" "$result" "$((SECONDS - t0))" "$sel"
done
# Leave the copy built as the real tree is, for the next run.
build_copy "$logs/build.log" cwcreds unit_tests || true

echo "mutants: ${caught} caught, ${survived} survived, ${broken} broken (${#chosen[@]} run, $((SECONDS - started))s)"
[[ $survived -eq 0 && $broken -eq 0 ]]
