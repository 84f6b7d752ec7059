# Mutants of common/: the event server, CPU sizing, parsing, core dumps.
# Sourced by scripts/mutants.sh; see there for the format.

mutant deadlines-on-wall-clock common/clock.cpp \
  's/^    return BootClock::now();$/    return SteadyTime{std::chrono::duration_cast<BootClock::duration>(std::chrono::system_clock::now().time_since_epoch())};/' \
  "$clocks"
mutant core-dumps-allowed common/core_dumps.cpp \
  's/prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)/prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)/' \
  '-R ^integration\.test_core_dumps$'
mutant emfile-spins common/event_admission.cpp \
  's/^                pause_accepting(error);/                (void)0;/' \
  "$unit"
mutant output-unbounded common/event_http_server.hpp \
  's/std::size_t max_pending_output = 64 \* 1024;/std::size_t max_pending_output = std::size_t{1} << 40;/' \
  "$unit"
mutant no-eviction-at-cap common/event_admission.cpp \
  's/>= m_server\.options\.max_connections \&\& !evict_oldest_idle()) {/>= m_server.options.max_connections) {/' \
  "$unit"
mutant pipelined-turn-never-resumed common/event_connection.cpp \
  's/^            queue_turn(connection);/            (void)0;/' \
  "$unit"
mutant handler-exception-escapes common/event_connection.cpp \
  's/^    } catch (const std::exception\& error) {/    } catch (const std::bad_alloc\& error) {/; s/^    } catch (\.\.\.) {/    } catch (const std::bad_cast\&) {/' \
  "$unit"
mutant cpu-quota-ignored common/cpu_budget.cpp \
  's/usable = std::min(usable, static_cast<unsigned>(std::max(1\.0, rounded)));/(void)rounded;/' \
  "$unit"
mutant big-head-400-not-431 common/http_request.cpp \
  's/return HttpParseError{431, "request head too large"};/return HttpParseError{400, "request head too large"};/' \
  "$hostile"
