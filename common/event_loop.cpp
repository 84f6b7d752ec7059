// The loop of each thread: wait on epoll for sockets, the cross-loop eventfd
// and the nearest deadline (a parked request's, the accept pause's, the next
// sweep's), dispatch, then let connections with requests left take their
// turn. The sweep closes connections whose head or keep-alive wait ran out.
// See event_loop.hpp for how the loop's work is divided between files.
#include "common/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace cw {

namespace {

constexpr Millis k_sweep_interval{1000};

}  // namespace

EventHttpServer::Impl::Loop::Loop(Impl& server)
    : m_server(server), m_epoll(epoll_create1(EPOLL_CLOEXEC)), m_event(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
{
    if (m_epoll.get() < 0 || m_event.get() < 0) {
        throw std::runtime_error("epoll/eventfd creation failed");
    }
    add(m_event.get(), EPOLLIN);
}

void EventHttpServer::Impl::Loop::listen_on(int socket_fd)
{
    m_listen_fd = socket_fd;
    add(socket_fd, EPOLLIN | EPOLLEXCLUSIVE);
}

void EventHttpServer::Impl::Loop::notify()
{
    const std::uint64_t one = 1;
    (void)::write(m_event.get(), &one, sizeof one);
}

void EventHttpServer::Impl::Loop::run()
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
    close_handed_over();
}

void EventHttpServer::Impl::Loop::close_handed_over()
{
    const std::lock_guard lock{m_handover_mutex};
    for (const int fd : m_handed_over) {
        ::close(fd);
        m_server.active.fetch_sub(1);
    }
    m_handed_over.clear();
}

void EventHttpServer::Impl::Loop::add(int fd, std::uint32_t events)
{
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &event);
}

void EventHttpServer::Impl::Loop::modify(int fd, std::uint32_t events)
{
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, fd, &event);
}

int EventHttpServer::Impl::Loop::wait_timeout(Steady::time_point next_sweep) const
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

void EventHttpServer::Impl::Loop::sweep(Steady::time_point now)
{
    std::vector<int> expired;
    for (const auto& [fd, connection] : m_connections) {
        if (connection.parked) {
            continue;
        }
        // Only a connection that has asked something earns the long
        // keep-alive wait: silent ones would otherwise hold a slot of
        // --max-connections for a minute each. A head counts from its
        // own first byte: answering a request before it does not buy
        // the rest of it more time.
        const bool idle_keep_alive = connection.in.empty() && connection.asked_anything;
        const auto limit = idle_keep_alive ? m_server.options.idle_timeout : m_server.options.head_timeout;
        if (now - connection.waiting_since() > limit) {
            expired.push_back(fd);
        }
    }
    for (const int fd : expired) {
        close_connection(fd);
    }
}

}  // namespace cw
