// The server's public face: binding the listening socket, running one loop
// per thread, stopping and waking them, and the counters. The loops
// themselves are in event_loop.cpp, event_admission.cpp and
// event_connection.cpp (see event_loop.hpp).
#include "common/event_http_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "common/event_loop.hpp"

namespace cw {

namespace {

constexpr int k_listen_backlog = 1024;

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
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 415:
            return "Unsupported Media Type";
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

EventHttpServer::Impl::Impl(EventHttpServerOptions options_in, HttpHandler handler_in, HttpObserver observer_in)
    : options(std::move(options_in)), handler(std::move(handler_in)), observer(std::move(observer_in))
{
    for (unsigned i = 0; i < std::max(1U, options.threads); ++i) {
        loops.push_back(std::make_unique<Loop>(*this));
    }
}

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
    for (auto& loop : loops) {
        loop->close_handed_over();
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
