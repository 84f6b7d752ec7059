# shellcheck shell=bash
# Sourced by the scripts: a long step runs with its output in a log and one
# line of progress every 30 s, instead of minutes of silence in which it
# looks hung. Each caller says before the step what it does and how long it
# usually takes.

# run_with_progress LOG PATTERN COMMAND...
# Runs COMMAND (a program or a function) with its output in LOG; every 30 s
# prints the last match of the extended regex PATTERN in LOG (cmake's
# percentage, podman's STEP, the package dpkg is unpacking) and the seconds
# so far. Returns COMMAND's status; the caller decides what of LOG to show.
# The seconds count from $progress_since when the caller sets it for the call
# (`progress_since=$t run_with_progress ...`): a silent step just before, such
# as cmake's configure, then counts toward the first 30 s.
run_with_progress() {
  local log=$1 pattern=$2
  shift 2
  local started=${progress_since:-$SECONDS} last status=0
  local next=$((started + 30))
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)); then
      last=$(grep -oE -- "$pattern" "$log" | tail -1 || true)
      echo "    ... ${last:+$last }after $((SECONDS - started)) s"
      next=$((SECONDS + 30))
    fi
  done
  wait "$pid" || status=$?
  return "$status"
}

# build_with_progress DIR JOBS [cmake --build options...]
# The build with cmake's percentage every 30 s; warnings and errors in full.
build_with_progress() {
  local dir=$1 jobs=$2
  shift 2
  local log status=0
  log=$(mktemp)
  run_with_progress "$log" '^\[ *[0-9]+%\]' cmake --build "$dir" -j "$jobs" "$@" || status=$?
  grep -E "error|warning" "$log" || true
  rm -f "$log"
  return "$status"
}
