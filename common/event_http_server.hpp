// A small HTTP/1.1 server for answers computed from memory.
//
// Each of a few threads runs an epoll loop; all loops share one listening
// socket (EPOLLEXCLUSIVE wakes one loop per connection). Connections cost a
// few hundred bytes while idle, not a thread, so hundreds of keep-alive
// clients (boto3 connection pools, one per process) are cheap, and an answer
// is a parse, a handler call and one send(). Request bodies are never read:
// a request that has one is answered and its connection closed.
//
// A handler may answer "not yet" (nullopt): the request is parked, without
// blocking its loop, and the handler is asked again after wake() or, with
// `final` set, once `park_limit` has passed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/http_request.hpp"

namespace cw {

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // beyond Content-Type/Length and Connection
};

using HttpHandler = std::function<std::optional<HttpResponse>(const HttpRequestHead& request, bool final)>;

// Called with the request (nullptr for an unparsable one) and the answer, after each answer.
using HttpObserver = std::function<void(const HttpRequestHead* request, const HttpResponse& response)>;

struct EventHttpServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    unsigned threads = 2;
    std::size_t max_connections = 1024;
    std::size_t max_head = 16 * 1024;
    Millis idle_timeout{60'000};  // keep-alive connections with nothing in flight
    Millis head_timeout{10'000};  // a request head that does not finish arriving
    Millis park_limit{800};
};

class EventHttpServer {
public:
    EventHttpServer(EventHttpServerOptions options, HttpHandler handler, HttpObserver observer = {});
    ~EventHttpServer();
    EventHttpServer(const EventHttpServer&) = delete;
    EventHttpServer& operator=(const EventHttpServer&) = delete;

    // Binds and listens; returns the port. Throws std::runtime_error.
    int bind();

    // Runs the loops until stop(); the calling thread runs one of them.
    void run();

    // Both thread-safe.
    void stop();
    void wake();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// The standard reason phrase ("OK", "Not Found", ...).
std::string_view http_reason(int status);

}  // namespace cw
