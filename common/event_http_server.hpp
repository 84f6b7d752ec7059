// A small HTTP/1.1 server for answers computed from memory.
//
// Each of a few threads runs an epoll loop; all loops share one listening
// socket (EPOLLEXCLUSIVE wakes one loop per connection). Connections cost a
// few hundred bytes while idle, not a thread, so hundreds of keep-alive
// clients (boto3 connection pools, one per process) are cheap, and an answer
// is a parse, a handler call and one send(). Request bodies are read only
// when `max_body` allows them, and only as sent with a Content-Length and no
// Content-Encoding: a body that would need unbounded work (chunked, or
// inflating) is refused before any of it is read (411, 415), one over the
// limit too (413). With max_body 0, a request that has a body is answered
// and its connection closed.
//
// With `tls` set every connection speaks TLS (OpenSSL, non-blocking, on the
// same loops): the handshake, the head and the body all count against
// `head_timeout`, and a connection mid-handshake is evictable like one
// mid-head. Closing sends close_notify once and does not wait for the
// peer's, so a client that never answers it costs nothing.
//
// A handler may answer "not yet" (nullopt): the request is parked, without
// blocking its loop, and the handler is asked again after wake() or, with
// `final` set, once `park_limit` has passed.
//
// Hostile or broken clients are bounded, not trusted: output waiting for a
// client that does not read stops the parsing of its pipelined requests at
// `max_pending_output`; input is held up to one request head; buffers give
// their memory back once drained; a connection that would grow its buffers
// while all connections together hold `max_buffered` bytes is closed; a
// connection gets a bounded number of answers per turn of its loop. A request
// head has `head_timeout` from its first byte, however many requests came
// before it on the connection. At `max_connections`, or when descriptors run
// out (EMFILE), the connection idle longest makes room for the newcomer, else
// the one waiting longest on an unfinished request (a loop with neither hands
// the newcomer to the loop holding the most). With every connection owed an
// answer, a newcomer at the cap is refused, and on EMFILE the loop stops
// accepting for `accept_pause` instead of waking again at once. A handler that throws gets
// its caller a 500, never std::terminate.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/ssl.h>

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

// The body of an answer the server gives on its own (a malformed head, a
// refused body), from its status and a short reason.
using HttpErrorBody = std::function<std::string(int status, std::string_view reason)>;

struct EventHttpServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    unsigned threads = 2;
    std::size_t max_connections = 1024;
    std::size_t max_head = 16 * 1024;
    Millis idle_timeout{60'000};  // keep-alive connections with nothing in flight
    Millis head_timeout{10'000};  // from a request's first byte (or the accept) to its end, body included
    Millis park_limit{800};
    bool keep_alive = true;                      // false: every answer closes its connection
    std::size_t max_pending_output = 64 * 1024;  // per connection, before its parsing pauses
    std::size_t max_buffered = 8 * 1024 * 1024;  // all connections' buffers together
    Millis accept_pause{250};                    // after accept fails for want of descriptors
    std::size_t max_body = 0;                    // 0: bodies are never read
    SSL_CTX* tls = nullptr;    // set: TLS on every connection; owned by the caller, outlives the server
    HttpErrorBody error_body;  // none: {"Code":"BadRequest","Message":reason}
};

// Counters for tests and figures; each is read without a lock.
struct EventHttpServerStats {
    std::size_t connections = 0;
    std::size_t buffered_bytes = 0;   // buffer capacity held by all connections
    std::uint64_t accept_pauses = 0;  // accept failed for want of descriptors
    std::uint64_t evictions = 0;      // idle or half-sent connections closed to make room (cap or EMFILE)
    std::uint64_t refusals = 0;       // newcomers closed at the cap, nothing idle to evict
    std::uint64_t shed = 0;           // closed while holding buffers past max_buffered
    std::uint64_t handler_failures = 0;
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

    [[nodiscard]] EventHttpServerStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// The standard reason phrase ("OK", "Not Found", ...).
std::string_view http_reason(int status);

}  // namespace cw
