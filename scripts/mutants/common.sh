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
# Out of descriptors, a warning every 250 ms for as long as it lasts.
mutant emfile-logged-per-wakeup common/event_admission.cpp \
  's/^    if (!m_server\.descriptors_exhausted\.exchange(true)) {$/    if (m_server.descriptors_exhausted.exchange(true) || true) {/' \
  '-R ^integration\.test_hostile_neighbours$'
mutant output-unbounded common/event_http_server.hpp \
  's/std::size_t max_pending_output = 64 \* 1024;/std::size_t max_pending_output = std::size_t{1} << 40;/' \
  "$unit"
mutant no-eviction-at-cap common/event_admission.cpp \
  's/>= m_server\.options\.max_connections \&\& !evict_one()) {/>= m_server.options.max_connections) {/' \
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
mutant other-loop-not-asked-to-evict common/event_admission.cpp \
  's/^                    fuller->request_eviction();$/                    (void)fuller;/' \
  "$unit"
mutant handover-counted-per-loop common/event_admission.cpp \
  's/^        if (evict_one()) {$/        if (m_connections.size() < m_server.options.max_connections || evict_one()) {/' \
  "$unit"
mutant silent-connection-kept-as-keep-alive common/event_loop.cpp \
  's/^        const bool idle_keep_alive = connection.in.empty() \&\& connection.asked_anything;$/        const bool idle_keep_alive = connection.in.empty();/' \
  "$unit"
mutant half-sent-heads-never-evicted common/event_admission.cpp \
  's/^        } else if (connection.awaiting_head()) {$/        } else if (false) {/' \
  "$unit"
mutant head-time-from-request-before common/event_loop.hpp \
  's/{ return in.empty() ? last_request : head_started; }/{ return last_request; }/' \
  "$unit"
mutant imds-connections-outside-budget common/descriptor_limit.cpp \
  's/^    const std::uint64_t side = caps.probes + caps.imds;$/    const std::uint64_t side = caps.probes;/' \
  "$unit"
mutant port-shared-with-second-server common/event_http_server.cpp \
  's/setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, \&on, sizeof on);/setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, \&on, sizeof on); setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, \&on, sizeof on);/' \
  "$unit"
mutant cpus-of-machine-not-mask common/cpu_budget.cpp \
  's/^#include <sched.h>$/#include <sched.h>\n\n#include <thread>/; s/^    return static_cast<unsigned>(std::max(1, CPU_COUNT(\&set)));$/    return std::max(1U, std::thread::hardware_concurrency());/' \
  "$unit"
mutant cgroup-path-missing-no-quota common/cpu_budget.cpp \
  's/^        return {mount};$/        return {};/' \
  "$unit"
mutant duration-keeps-last-part common/duration.cpp \
  's/^        total += amount \* \*factor;$/        total = amount * *factor;/' \
  "$unit"
mutant utc-offset-sign-reversed common/time_format.cpp \
  "s/return text\[pos\] == '+' ? \*instant - offset : \*instant + offset;/return text[pos] == '+' ? *instant + offset : *instant - offset;/" \
  "$unit"
mutant key-id-length-run-unredacted common/redact.cpp \
  's/if (end - pos >= k_secret_run) {/if (end - pos > k_secret_run) {/' \
  "$unit"
mutant jwt-decoded-as-plain-base64 common/jwt_claims.cpp \
  "s/if (c == '-') {/if (c == '+') {/; s/if (c == '_') {/if (c == '\/') {/" \
  "$unit"
mutant digest-compare-pointer-size common/digest.cpp \
  's/CRYPTO_memcmp(left.data(), right.data(), left.size())/CRYPTO_memcmp(left.data(), right.data(), sizeof left.data())/' \
  "$unit"
mutant file-bound-per-read common/file_reader.cpp \
  's/^        if (content.size() > max_bytes) {$/        if (static_cast<std::size_t>(got) > max_bytes) {/' \
  "$unit"
mutant descriptors-reserved-ignored common/descriptor_limit.cpp \
  's/const std::uint64_t available = limit > reserved + 3 ? limit - reserved : 3;/const std::uint64_t available = limit > reserved + 3 ? limit : 3;/' \
  "$unit"
mutant log-value-with-space-unquoted common/logging.cpp \
  "s/return byte <= 0x20 || byte >= 0x7F || c == '\"' || c == '=';/return byte < 0x20 || byte >= 0x7F || c == '\"' || c == '=';/" \
  "$unit"
mutant loopback-by-prefix common/loopback.cpp \
  's/^    return inet_pton(AF_INET, text.c_str(), \&address) == 1 \&\& (ntohl(address.s_addr) >> 24) == 127;$/    return inet_pton(AF_INET, text.c_str(), \&address) == 1 ? (ntohl(address.s_addr) >> 24) == 127 : text.rfind("127.", 0) == 0;/' \
  "$unit"
mutant sigint-not-awaited common/shutdown_signal.cpp \
  's/^    sigaddset(\&set, SIGINT);$/    (void)0;/' \
  "$startup"
# A pod name holding a line break would go bare into a text log line and forge the next one.
mutant log-control-chars-bare common/logging.cpp \
  's/               return byte <= 0x20 || byte >= 0x7F || /               return byte == 0x20 || byte == 0x09 || /' \
  "$unit"
# DEL, CSI (U+009B) and bidi overrides would reach the terminal reading the logs.
mutant log-invisible-controls-kept common/logging.cpp \
  's/        if (code == 0x7F || is_invisible_control(code)) {/        if (false) {/' \
  "$unit"
# A chunked body read to its end: memory and time bounded by nothing.
mutant chunked-body-read-whole common/event_connection.cpp \
  's/^    if (request\.transfer_encoded) {$/    if (false) {/' \
  "$unit"
# A body trickled a byte at a time would hold its connection for ever.
mutant request-deadline-per-read common/event_connection.cpp \
  's/^            if (connection\.in\.empty()) {$/            if (true) {/' \
  "$unit"
# Past the buffer budget, the newest holder (a review arriving whole) would be closed.
mutant buffer-budget-sheds-newest common/event_connection.cpp \
  's/(longest == nullptr || candidate\.waiting_since() < longest->waiting_since())/(longest == nullptr || candidate.waiting_since() > longest->waiting_since())/' \
  "$unit"
# Requests decrypted inside OpenSSL, past one read, would wait for bytes that never come.
mutant tls-held-input-ignored common/event_connection.cpp \
  's/^    if (want_read \&\& tls_input_held(connection)) {$/    if (false) {/' \
  "$unit"
