// Who gets a connection. Accepting takes a slot of `max_connections`; at the
// cap, or when the process runs out of descriptors (EMFILE), the connection
// idle longest gives its slot up (else the one waiting longest on a
// half-sent request head), and a loop with nothing idle asks the loop
// holding the most connections to do it (a handover list and its eventfd).
// Kept apart from the connection's own life because these rules are about
// all connections at once, and are where a hostile neighbour pushes hardest.
#include "common/event_loop.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>

#include "common/logging.hpp"

namespace cw {

namespace {

// Out of descriptors, how long a new connection has to send its first
// request before it may be given up (see evict_one).
constexpr Millis k_first_request_grace{1000};

}  // namespace

// Another loop accepted `fd` at the cap with nothing of its own to
// evict; this one has connections and may have an idle one.
void EventHttpServer::Impl::Loop::hand_over(int fd)
{
    {
        const std::lock_guard lock{m_handover_mutex};
        m_handed_over.push_back(fd);
    }
    notify();
}

// Another loop is out of descriptors with nothing idle of its own:
// descriptors are the process's, so an idle connection here frees
// one for the caller waiting in its backlog (it retries after its
// accept pause).
void EventHttpServer::Impl::Loop::request_eviction()
{
    m_evictions_requested.fetch_add(1);
    notify();
}

void EventHttpServer::Impl::Loop::evict_for_others()
{
    for (int wanted = m_evictions_requested.exchange(0); wanted > 0 && evict_one(Spare::fresh); --wanted) {
    }
}

void EventHttpServer::Impl::Loop::accept_all()
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
                if (evict_one(Spare::fresh)) {
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
        if (m_server.active.fetch_add(1) >= m_server.options.max_connections && !evict_one()) {
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
bool EventHttpServer::Impl::Loop::caller_waiting() const
{
    pollfd listening{m_listen_fd, POLLIN, 0};
    return ::poll(&listening, 1, 0) == 1 && (listening.revents & POLLIN) != 0;
}

void EventHttpServer::Impl::Loop::adopt_handed_over()
{
    std::vector<int> fds;
    {
        const std::lock_guard lock{m_handover_mutex};
        fds.swap(m_handed_over);
    }
    for (const int fd : fds) {
        if (evict_one()) {
            add_connection(fd);
        } else {
            refuse(fd);
        }
    }
}

auto EventHttpServer::Impl::Loop::fullest_other_loop() -> Loop*
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
void EventHttpServer::Impl::Loop::refuse(int fd)
{
    m_server.active.fetch_sub(1);
    m_server.refusals.fetch_add(1);
    ::close(fd);
}

void EventHttpServer::Impl::Loop::add_connection(int fd)
{
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    std::unique_ptr<SSL, TlsFree> tls;
    if (m_server.options.tls != nullptr) {
        tls.reset(SSL_new(m_server.options.tls));
        if (!tls || SSL_set_fd(tls.get(), fd) != 1) {
            refuse(fd);  // out of memory: as good as at the cap
            return;
        }
        SSL_set_accept_state(tls.get());
    }
    auto& connection = m_connections[fd];
    connection.fd = FileDescriptor{fd};
    connection.tls = std::move(tls);
    connection.last_request = Steady::now();
    connection.interest = EPOLLIN | EPOLLRDHUP;
    add(fd, connection.interest);
    m_connection_count.store(m_connections.size());
}

// The listening socket stays readable while a connection waits in
// the backlog, so without a pause a loop that cannot accept it for
// want of descriptors would wake again at once, forever. The
// connection waits in the backlog meanwhile; one line per episode.
void EventHttpServer::Impl::Loop::pause_accepting(int error)
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

bool EventHttpServer::Impl::Loop::evict_one(Spare spare)
{
    const auto fresh_since = Steady::now() - k_first_request_grace;
    // (0, idle since) before (1, waiting since): an idle connection loses
    // nothing, so every one goes before any connection mid-head.
    std::vector<std::tuple<int, Steady::time_point, int>> candidates;
    for (const auto& [fd, connection] : m_connections) {
        const bool fresh = !connection.asked_anything && connection.last_request > fresh_since;
        if (spare == Spare::fresh && fresh) {
            continue;
        }
        if (connection.idle() && connection.asked_anything) {
            candidates.emplace_back(0, connection.last_request, fd);
        } else if (connection.awaiting_head()) {
            candidates.emplace_back(1, connection.waiting_since(), fd);
        }
    }
    std::sort(candidates.begin(), candidates.end());
    for (const auto& [tier, since, fd] : candidates) {
        // A request still in the kernel (a connection accepted a moment
        // ago, or one asking again) is on its way to an answer. Not so
        // for more bytes of a head already begun: a neighbour dripping
        // into every connection would otherwise leave the newest caller,
        // whose request has not arrived yet, the only one to give up.
        const bool head_begun = !m_connections.at(fd).in.empty();
        if (int unread = 0; !head_begun && ::ioctl(fd, FIONREAD, &unread) == 0 && unread > 0) {
            continue;
        }
        close_connection(fd);  // its slot is the one the newcomer counted itself into
        m_server.evictions.fetch_add(1);
        return true;
    }
    return false;
}

}  // namespace cw
