#include "common/event_http_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/logging.hpp"

namespace cw {

namespace {

constexpr int k_listen_backlog = 1024;
constexpr std::size_t k_read_chunk = 16 * 1024;
// A drained buffer keeps at most this much capacity: enough for the next
// request and answer of an SDK client (a JWT is about 1 KiB), so a keep-alive
// connection does not allocate per request, while one burst does not pin a
// connection's memory for its lifetime.
constexpr std::size_t k_kept_capacity = 4 * 1024;
constexpr Millis k_sweep_interval{1000};
// Out of descriptors, how long a new connection has to send its first
// request before it counts as idle (see evict_oldest_idle).
constexpr Millis k_first_request_grace{1000};
// Answers one connection gets per turn. A client that pipelines hundreds of
// requests waits for the next turn rather than keeping the loop from
// everyone else: a turn costs at most this many handler calls.
constexpr int k_answers_per_turn = 16;

// Heap bytes a string holds; short strings live inside the object.
std::size_t heap_bytes(const std::string& text)
{
    static const std::size_t inline_capacity = std::string{}.capacity();
    return text.capacity() > inline_capacity ? text.capacity() : 0;
}

void release_if_large(std::string& text)
{
    if (text.empty() && text.capacity() > k_kept_capacity) {
        std::string{}.swap(text);
    }
}

using Steady = std::chrono::steady_clock;

class FileDescriptor {
public:
    explicit FileDescriptor(int fd = -1) : m_fd(fd) {}
    ~FileDescriptor() { reset(); }
    FileDescriptor(FileDescriptor&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    FileDescriptor& operator=(FileDescriptor&& other) noexcept
    {
        reset();
        m_fd = std::exchange(other.m_fd, -1);
        return *this;
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    [[nodiscard]] int get() const { return m_fd; }
    void reset()
    {
        if (m_fd >= 0) {
            ::close(m_fd);
            m_fd = -1;
        }
    }

private:
    int m_fd;
};

std::string serialize(const HttpResponse& response, bool keep_alive, bool include_body)
{
    std::string out;
    out.reserve(160 + response.body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(response.status);
    out += ' ';
    out += http_reason(response.status);
    out += "\r\nContent-Type: ";
    out += response.content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(response.body.size());
    out += "\r\n";
    for (const auto& [name, value] : response.headers) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    if (!keep_alive) {
        out += "Connection: close\r\n";
    }
    out += "\r\n";
    if (include_body) {
        out += response.body;
    }
    return out;
}

HttpResponse parse_error_response(const HttpParseError& error)
{
    HttpResponse response;
    response.status = error.status;
    response.body = R"({"Code":"BadRequest","Message":")" + error.reason + "\"}";
    return response;
}

struct Connection {
    FileDescriptor fd;
    std::string in;
    std::string out;
    std::size_t out_offset = 0;
    Steady::time_point last_request;  // accept, or the last complete request
    bool asked_anything = false;      // a connection that never sent a request gets the head timeout
    bool read_closed = false;         // the peer sent EOF
    bool close_after_write = false;
    bool has_turn_queued = false;  // on its loop's list of connections with requests left to answer
    std::uint32_t interest = 0;    // the epoll events registered now
    std::optional<HttpRequestHead> parked;
    Steady::time_point park_deadline;
    std::size_t accounted = 0;  // this connection's share of the server's buffered bytes

    [[nodiscard]] std::size_t pending_output() const { return out.size() - out_offset; }
    // Nothing asked and unanswered, nothing owed: closing it loses nothing.
    [[nodiscard]] bool idle() const { return !parked && in.empty() && pending_output() == 0 && !close_after_write; }
};

HttpResponse internal_error_response()
{
    HttpResponse response;
    response.status = 500;
    response.body = R"({"Code":"InternalError","Message":"the request could not be answered; see the sidecar's log"})";
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
}

}  // namespace

std::string_view http_reason(int status)
{
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 414:
            return "URI Too Long";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

struct EventHttpServer::Impl {
    // One epoll loop; it owns the connections it accepted.
    class Loop {
    public:
        explicit Loop(Impl& server)
            : m_server(server), m_epoll(epoll_create1(EPOLL_CLOEXEC)), m_event(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
        {
            if (m_epoll.get() < 0 || m_event.get() < 0) {
                throw std::runtime_error("epoll/eventfd creation failed");
            }
            add(m_event.get(), EPOLLIN);
        }

        void listen_on(int socket_fd)
        {
            m_listen_fd = socket_fd;
            add(socket_fd, EPOLLIN | EPOLLEXCLUSIVE);
        }

        void notify()
        {
            const std::uint64_t one = 1;
            (void)::write(m_event.get(), &one, sizeof one);
        }

        void run()
        {
            std::array<epoll_event, 256> events{};
            auto next_sweep = Steady::now() + k_sweep_interval;
            while (!m_server.stopping.load()) {
                // Connections with requests left take another turn after the
                // events of this round; waiting would leave them stalled.
                const int timeout = m_turns.empty() ? wait_timeout(next_sweep) : 0;
                const int ready = epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), timeout);
                for (int i = 0; i < ready; ++i) {
                    const int fd = events[static_cast<std::size_t>(i)].data.fd;
                    const auto flags = events[static_cast<std::size_t>(i)].events;
                    if (fd == m_listen_fd) {
                        accept_all();
                    } else if (fd == m_event.get()) {
                        std::uint64_t count = 0;
                        (void)::read(m_event.get(), &count, sizeof count);
                        m_recheck_parked = true;
                        adopt_handed_over();
                        evict_for_others();
                    } else {
                        on_ready(fd, flags);
                    }
                }
                take_queued_turns();
                const auto now = Steady::now();
                if (!m_accepting && now >= m_accept_resume) {
                    add(m_listen_fd, EPOLLIN | EPOLLEXCLUSIVE);
                    m_accepting = true;
                }
                if (m_parked > 0 && (m_recheck_parked || now >= m_next_park_deadline)) {
                    resolve_parked(now);
                }
                if (now >= next_sweep) {
                    sweep(now);
                    next_sweep = now + k_sweep_interval;
                }
            }
            for (const auto& [fd, connection] : m_connections) {
                m_server.buffered.fetch_sub(connection.accounted);
            }
            m_server.active.fetch_sub(m_connections.size());
            m_connections.clear();
            const std::lock_guard lock{m_handover_mutex};
            for (const int fd : m_handed_over) {
                ::close(fd);
                m_server.active.fetch_sub(1);
            }
            m_handed_over.clear();
        }

        // Another loop accepted `fd` at the cap with nothing of its own to
        // evict; this one has connections and may have an idle one.
        void hand_over(int fd)
        {
            {
                const std::lock_guard lock{m_handover_mutex};
                m_handed_over.push_back(fd);
            }
            notify();
        }

        [[nodiscard]] std::size_t connection_count() const { return m_connection_count.load(); }

        // Another loop is out of descriptors with nothing idle of its own:
        // descriptors are the process's, so an idle connection here frees
        // one for the caller waiting in its backlog (it retries after its
        // accept pause).
        void request_eviction()
        {
            m_evictions_requested.fetch_add(1);
            notify();
        }

        void evict_for_others()
        {
            for (int wanted = m_evictions_requested.exchange(0); wanted > 0 && evict_oldest_idle(Spare::fresh);
                 --wanted) {
            }
        }

    private:
        void add(int fd, std::uint32_t events)
        {
            epoll_event event{};
            event.events = events;
            event.data.fd = fd;
            epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &event);
        }

        void modify(int fd, std::uint32_t events)
        {
            epoll_event event{};
            event.events = events;
            event.data.fd = fd;
            epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, fd, &event);
        }

        int wait_timeout(Steady::time_point next_sweep) const
        {
            auto until = next_sweep;
            if (m_parked > 0 && m_next_park_deadline < until) {
                until = m_next_park_deadline;
            }
            if (!m_accepting && m_accept_resume < until) {
                until = m_accept_resume;
            }
            const auto left = std::chrono::duration_cast<Millis>(until - Steady::now()).count();
            return static_cast<int>(std::max<Millis::rep>(left + 1, 0));
        }

        void accept_all()
        {
            for (;;) {
                const int fd = accept4(m_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    const int error = errno;
                    if (error == EINTR || error == ECONNABORTED) {
                        continue;
                    }
                    if (error == EMFILE || error == ENFILE) {
                        // accept4 takes a descriptor before it looks at the
                        // queue, so it fails with EMFILE even when nobody
                        // waits (as right after the connection it just
                        // accepted): an idle connection makes room only for
                        // a caller who is there.
                        if (!caller_waiting()) {
                            return;
                        }
                        // An idle connection gives its descriptor up to the
                        // caller waiting now, as at the connection cap.
                        if (evict_oldest_idle(Spare::fresh)) {
                            continue;
                        }
                        if (Loop* fuller = fullest_other_loop(); fuller != nullptr) {
                            fuller->request_eviction();
                        }
                    }
                    if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
                        pause_accepting(error);
                    }
                    return;  // EAGAIN: another loop took it, or none left
                }
                if (m_server.descriptors_exhausted.exchange(false)) {
                    log_event(spdlog::level::info, "accepting connections again");
                }
                if (m_server.active.fetch_add(1) >= m_server.options.max_connections && !evict_oldest_idle()) {
                    // Loops own their connections: the one holding the most
                    // may have an idle one to give up.
                    if (Loop* fuller = fullest_other_loop(); fuller != nullptr) {
                        fuller->hand_over(fd);
                    } else {
                        refuse(fd);
                    }
                    continue;
                }
                add_connection(fd);
            }
        }

        // Needs no descriptor, unlike accept4.
        [[nodiscard]] bool caller_waiting() const
        {
            pollfd listening{m_listen_fd, POLLIN, 0};
            return ::poll(&listening, 1, 0) == 1 && (listening.revents & POLLIN) != 0;
        }

        void adopt_handed_over()
        {
            std::vector<int> fds;
            {
                const std::lock_guard lock{m_handover_mutex};
                fds.swap(m_handed_over);
            }
            for (const int fd : fds) {
                if (evict_oldest_idle()) {
                    add_connection(fd);
                } else {
                    refuse(fd);
                }
            }
        }

        Loop* fullest_other_loop()
        {
            Loop* fullest = nullptr;
            for (const auto& loop : m_server.loops) {
                if (loop.get() != this && loop->connection_count() > 0 &&
                    (fullest == nullptr || loop->connection_count() > fullest->connection_count())) {
                    fullest = loop.get();
                }
            }
            return fullest;
        }

        // Every slot is busy: the client sees a reset and retries.
        void refuse(int fd)
        {
            m_server.active.fetch_sub(1);
            m_server.refusals.fetch_add(1);
            ::close(fd);
        }

        void add_connection(int fd)
        {
            const int on = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
            auto& connection = m_connections[fd];
            connection.fd = FileDescriptor{fd};
            connection.last_request = Steady::now();
            connection.interest = EPOLLIN | EPOLLRDHUP;
            add(fd, connection.interest);
            m_connection_count.store(m_connections.size());
        }

        // The listening socket stays readable while a connection waits in
        // the backlog, so without a pause a loop that cannot accept it for
        // want of descriptors would wake again at once, forever. The
        // connection waits in the backlog meanwhile; one line per episode.
        void pause_accepting(int error)
        {
            epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_listen_fd, nullptr);
            m_accepting = false;
            m_accept_resume = Steady::now() + m_server.options.accept_pause;
            m_server.accept_pauses.fetch_add(1);
            if (!m_server.descriptors_exhausted.exchange(true)) {
                log_event(spdlog::level::warn, "cannot accept connections",
                          {{"reason", std::strerror(error)},
                           {"connections", static_cast<long>(m_server.active.load())},
                           {"retry_every", std::to_string(m_server.options.accept_pause.count()) + "ms"}});
            }
        }

        // At the cap, a newcomer takes the slot of the connection that has
        // been idle longest: a keep-alive client loses nothing (its pool
        // reconnects), while camping on every slot no longer locks others out.
        // Out of descriptors (`Spare::fresh`), a connection that has not yet
        // had a second to send its first request is spared: it came before
        // the caller waiting, and giving its descriptor to that caller would
        // only trade one unanswered client for another.
        enum class Spare { none, fresh };
        bool evict_oldest_idle(Spare spare = Spare::none)
        {
            const auto fresh_since = Steady::now() - k_first_request_grace;
            std::vector<std::pair<Steady::time_point, int>> candidates;
            for (const auto& [fd, connection] : m_connections) {
                const bool fresh = !connection.asked_anything && connection.last_request > fresh_since;
                if (connection.idle() && !(spare == Spare::fresh && fresh)) {
                    candidates.emplace_back(connection.last_request, fd);
                }
            }
            std::sort(candidates.begin(), candidates.end());
            for (const auto& [since, fd] : candidates) {
                // A request still in the kernel (a connection accepted a
                // moment ago, or one asking again) makes it busy, not idle.
                if (int unread = 0; ::ioctl(fd, FIONREAD, &unread) == 0 && unread > 0) {
                    continue;
                }
                close_connection(fd);  // its slot is the one the newcomer counted itself into
                m_server.evictions.fetch_add(1);
                return true;
            }
            return false;
        }

        void close_connection(int fd)
        {
            const auto it = m_connections.find(fd);
            if (it == m_connections.end()) {
                return;
            }
            if (it->second.parked) {
                --m_parked;
            }
            m_server.buffered.fetch_sub(it->second.accounted);
            m_connections.erase(it);  // the FileDescriptor closes it, which also leaves epoll
            m_connection_count.store(m_connections.size());
            m_server.active.fetch_sub(1);
        }

        void on_ready(int fd, std::uint32_t flags)
        {
            const auto it = m_connections.find(fd);
            if (it == m_connections.end()) {
                return;
            }
            Connection& connection = it->second;
            if ((flags & (EPOLLERR | EPOLLHUP)) != 0) {
                close_connection(fd);
                return;
            }
            if ((flags & (EPOLLIN | EPOLLRDHUP)) != 0) {
                read_from(connection);
            }
            serve(connection);
        }

        void read_from(Connection& connection)
        {
            std::array<char, k_read_chunk> buffer{};
            // One byte over the head limit is enough for the parser to refuse
            // it; more would only be memory held for a client. What is left
            // in the socket is read once the buffer has been parsed.
            const std::size_t max_input = m_server.options.max_head + 1;
            while (connection.in.size() < max_input) {
                const std::size_t room = std::min(buffer.size(), max_input - connection.in.size());
                const ssize_t got = ::recv(connection.fd.get(), buffer.data(), room, 0);
                if (got > 0) {
                    connection.in.append(buffer.data(), static_cast<std::size_t>(got));
                } else if (got < 0 && errno == EINTR) {
                    continue;
                } else {
                    if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                        connection.read_closed = true;  // answer what was asked, then close
                    }
                    return;
                }
            }
        }

        [[nodiscard]] bool may_parse(const Connection& connection) const
        {
            return !connection.parked && !connection.in.empty() && !connection.close_after_write &&
                   connection.pending_output() < m_server.options.max_pending_output;
        }

        // Answers every complete request in the buffer, sending each answer
        // at once, until one is parked or the client stops reading (output
        // backs up); then updates what epoll watches. Called again on
        // EPOLLOUT, so requests left in the buffer are answered as the
        // client reads.
        void serve(Connection& connection)
        {
            const int fd = connection.fd.get();
            // Send what waits first: room it makes lets parsing resume below.
            if (!flush(connection)) {
                return;
            }
            for (int answers = 0; may_parse(connection); ++answers) {
                if (answers == k_answers_per_turn) {
                    queue_turn(connection);
                    break;
                }
                auto parsed = parse_http_request_head(connection.in, m_server.options.max_head);
                if (std::holds_alternative<HttpNeedMore>(parsed)) {
                    break;
                }
                if (const auto* error = std::get_if<HttpParseError>(&parsed)) {
                    connection.in.clear();
                    respond(connection, nullptr, parse_error_response(*error), false);
                    break;
                }
                auto& request = std::get<HttpRequestHead>(parsed);
                if (request.has_body) {
                    request.keep_alive = false;  // bodies are never read: answer, then close
                    connection.in.clear();
                } else {
                    connection.in.erase(0, request.head_size);
                }
                connection.last_request = Steady::now();
                connection.asked_anything = true;
                auto response = call_handler(request, false);
                if (!response) {
                    park(connection, std::move(request));
                    break;
                }
                respond(connection, &request, *response, request.keep_alive);
                if (!flush(connection)) {
                    return;
                }
            }
            if (!flush(connection)) {
                return;
            }
            release_if_large(connection.in);
            // Nothing more can be asked and nothing is owed: done.
            if (connection.read_closed && !connection.parked && connection.pending_output() == 0) {
                close_connection(fd);
                return;
            }
            const bool want_read = !connection.read_closed && !connection.parked && !connection.close_after_write &&
                                   connection.pending_output() < m_server.options.max_pending_output;
            const std::uint32_t interest =
                (want_read ? EPOLLIN | EPOLLRDHUP : 0U) | (connection.pending_output() > 0 ? EPOLLOUT : 0U);
            if (interest != connection.interest) {
                connection.interest = interest;
                modify(fd, interest);
            }
            account(connection);
        }

        // Keeps the server-wide total of buffered bytes current. Past
        // max_buffered, a connection that is still holding unparsed input or
        // unsent output is closed rather than allowed to add to it: the
        // clients that read their answers hold nothing and are unaffected.
        void account(Connection& connection)
        {
            const std::size_t now = heap_bytes(connection.in) + heap_bytes(connection.out);
            const std::size_t total =
                m_server.buffered.fetch_add(now - connection.accounted) + now - connection.accounted;
            connection.accounted = now;
            if (total > m_server.options.max_buffered && !connection.parked &&
                (!connection.in.empty() || connection.pending_output() > 0)) {
                m_server.shed.fetch_add(1);
                close_connection(connection.fd.get());
            }
        }

        void queue_turn(Connection& connection)
        {
            if (!connection.has_turn_queued) {
                connection.has_turn_queued = true;
                m_turns.push_back(connection.fd.get());
            }
        }

        void take_queued_turns()
        {
            std::vector<int> turns;
            turns.swap(m_turns);
            for (const int fd : turns) {
                if (const auto it = m_connections.find(fd); it != m_connections.end()) {
                    it->second.has_turn_queued = false;
                    serve(it->second);
                }
            }
        }

        // A handler that throws answers 500: one request fails, not the process.
        std::optional<HttpResponse> call_handler(const HttpRequestHead& request, bool final)
        {
            try {
                return m_server.handler(request, final);
            } catch (const std::exception& error) {
                log_handler_failure(request, error.what());
            } catch (...) {
                log_handler_failure(request, "unknown exception");
            }
            return internal_error_response();
        }

        void log_handler_failure(const HttpRequestHead& request, std::string_view what)
        {
            m_server.handler_failures.fetch_add(1);
            log_event(spdlog::level::err, "request failed",
                      {{"method", request.method}, {"path", request.path}, {"error", what}});
        }

        void respond(Connection& connection, const HttpRequestHead* request, const HttpResponse& response,
                     bool keep_alive)
        {
            const bool head_only = request != nullptr && request->method == "HEAD";
            keep_alive = keep_alive && m_server.options.keep_alive;
            if (connection.out_offset > 0) {  // what was sent is not kept while more is queued
                connection.out.erase(0, connection.out_offset);
                connection.out_offset = 0;
            }
            if (connection.out.empty()) {
                connection.out = serialize(response, keep_alive, !head_only);
            } else {
                connection.out += serialize(response, keep_alive, !head_only);
            }
            if (!keep_alive) {
                connection.close_after_write = true;
            }
            if (m_server.observer) {
                m_server.observer(request, response);
            }
        }

        void park(Connection& connection, HttpRequestHead request)
        {
            connection.parked = std::move(request);
            connection.park_deadline = Steady::now() + m_server.options.park_limit;
            if (m_parked == 0 || connection.park_deadline < m_next_park_deadline) {
                m_next_park_deadline = connection.park_deadline;
            }
            ++m_parked;
        }

        void resolve_parked(Steady::time_point now)
        {
            m_recheck_parked = false;
            m_next_park_deadline = Steady::time_point::max();
            std::vector<int> answered;
            for (auto& [fd, connection] : m_connections) {
                if (!connection.parked) {
                    continue;
                }
                const bool final = now >= connection.park_deadline;
                auto response = call_handler(*connection.parked, final);
                if (!response && final) {
                    response = HttpResponse{
                        503, "application/json", R"({"Code":"Unavailable","Message":"no answer in time"})", {}};
                }
                if (!response) {
                    m_next_park_deadline = std::min(m_next_park_deadline, connection.park_deadline);
                    continue;
                }
                const HttpRequestHead request = std::move(*connection.parked);
                connection.parked.reset();
                --m_parked;
                respond(connection, &request, *response, request.keep_alive);
                answered.push_back(fd);
            }
            for (const int fd : answered) {
                if (const auto it = m_connections.find(fd); it != m_connections.end()) {
                    serve(it->second);  // pipelined requests behind it, then send
                }
            }
        }

        // Sends what is queued; returns false when the connection was closed.
        bool flush(Connection& connection)
        {
            const int fd = connection.fd.get();
            while (connection.pending_output() > 0) {
                const ssize_t sent = ::send(fd, connection.out.data() + connection.out_offset,
                                            connection.pending_output(), MSG_NOSIGNAL);
                if (sent > 0) {
                    connection.out_offset += static_cast<std::size_t>(sent);
                } else if (sent < 0 && errno == EINTR) {
                    continue;
                } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    return true;
                } else {
                    close_connection(fd);
                    return false;
                }
            }
            connection.out.clear();
            connection.out_offset = 0;
            release_if_large(connection.out);
            if (connection.close_after_write && !connection.parked) {
                discard_input(fd);
                close_connection(fd);
                return false;
            }
            return true;
        }

        // Closing a socket with unread input sends a reset, which may destroy
        // the answer before the client reads it; read (a bounded amount of)
        // what already arrived first, so the close is a normal FIN.
        static void discard_input(int fd)
        {
            std::array<char, k_read_chunk> buffer{};
            for (std::size_t total = 0; total < 4 * 1024 * 1024;) {
                const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
                if (got <= 0) {
                    return;
                }
                total += static_cast<std::size_t>(got);
            }
        }

        void sweep(Steady::time_point now)
        {
            std::vector<int> expired;
            for (const auto& [fd, connection] : m_connections) {
                if (connection.parked) {
                    continue;
                }
                // Only a connection that has asked something earns the long
                // keep-alive wait: silent ones would otherwise hold a slot of
                // --max-connections for a minute each.
                const bool idle_keep_alive = connection.in.empty() && connection.asked_anything;
                const auto limit = idle_keep_alive ? m_server.options.idle_timeout : m_server.options.head_timeout;
                if (now - connection.last_request > limit) {
                    expired.push_back(fd);
                }
            }
            for (const int fd : expired) {
                close_connection(fd);
            }
        }

        Impl& m_server;
        FileDescriptor m_epoll;
        FileDescriptor m_event;
        int m_listen_fd = -1;
        std::unordered_map<int, Connection> m_connections;
        std::size_t m_parked = 0;
        Steady::time_point m_next_park_deadline = Steady::time_point::max();
        bool m_recheck_parked = false;
        bool m_accepting = true;
        Steady::time_point m_accept_resume;
        std::vector<int> m_turns;                        // connections with requests left to answer
        std::atomic<std::size_t> m_connection_count{0};  // read by other loops
        std::mutex m_handover_mutex;
        std::vector<int> m_handed_over;
        std::atomic<int> m_evictions_requested{0};
    };

    Impl(EventHttpServerOptions options_in, HttpHandler handler_in, HttpObserver observer_in)
        : options(std::move(options_in)), handler(std::move(handler_in)), observer(std::move(observer_in))
    {
        for (unsigned i = 0; i < std::max(1U, options.threads); ++i) {
            loops.push_back(std::make_unique<Loop>(*this));
        }
    }

    EventHttpServerOptions options;
    HttpHandler handler;
    HttpObserver observer;
    FileDescriptor listen_fd;
    std::vector<std::unique_ptr<Loop>> loops;
    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> active{0};
    std::atomic<std::size_t> buffered{0};
    std::atomic<bool> descriptors_exhausted{false};
    std::atomic<std::uint64_t> accept_pauses{0};
    std::atomic<std::uint64_t> evictions{0};
    std::atomic<std::uint64_t> refusals{0};
    std::atomic<std::uint64_t> shed{0};
    std::atomic<std::uint64_t> handler_failures{0};
};

EventHttpServer::EventHttpServer(EventHttpServerOptions options, HttpHandler handler, HttpObserver observer)
    : m_impl(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(observer)))
{
}

EventHttpServer::~EventHttpServer() = default;

int EventHttpServer::bind()
{
    auto& impl = *m_impl;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(impl.options.port);
    if (getaddrinfo(impl.options.host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
        throw std::runtime_error("cannot listen on " + impl.options.host + ":" + port + ": not an IP address");
    }
    const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> address{found, freeaddrinfo};
    FileDescriptor fd{::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    // SO_REUSEADDR (restart while old connections linger in TIME_WAIT) but not
    // SO_REUSEPORT: a second process on the same port must fail, not share it.
    const int on = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fd.get() < 0 || ::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0 ||
        ::listen(fd.get(), k_listen_backlog) != 0) {
        throw std::runtime_error("cannot listen on " + impl.options.host + ":" + port + ": " + std::strerror(errno));
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
    const int bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    impl.listen_fd = std::move(fd);
    for (auto& loop : impl.loops) {
        loop->listen_on(impl.listen_fd.get());
    }
    return bound_port;
}

void EventHttpServer::run()
{
    auto& loops = m_impl->loops;
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < loops.size(); ++i) {
        threads.emplace_back([&loop = *loops[i]] { loop.run(); });
    }
    loops.front()->run();
    for (auto& thread : threads) {
        thread.join();
    }
}

void EventHttpServer::stop()
{
    m_impl->stopping = true;
    for (auto& loop : m_impl->loops) {
        loop->notify();
    }
}

EventHttpServerStats EventHttpServer::stats() const
{
    const auto& impl = *m_impl;
    EventHttpServerStats out;
    out.connections = impl.active.load();
    out.buffered_bytes = impl.buffered.load();
    out.accept_pauses = impl.accept_pauses.load();
    out.evictions = impl.evictions.load();
    out.refusals = impl.refusals.load();
    out.shed = impl.shed.load();
    out.handler_failures = impl.handler_failures.load();
    return out;
}

void EventHttpServer::wake()
{
    for (auto& loop : m_impl->loops) {
        loop->notify();
    }
}

}  // namespace cw
