// The event server's insides, shared by the files that implement it; not an
// interface (that is common/event_http_server.hpp). One `Loop` per thread
// owns the connections it accepted. Its member functions live in three
// files, one concern each:
//   event_loop.cpp        the loop: waiting on epoll, timers, the sweep of
//                         expired connections;
//   event_admission.cpp   who gets a connection: accepting, the connection
//                         cap, eviction when descriptors run out, handing a
//                         newcomer to another loop;
//   event_connection.cpp  one connection's life: reading, parsing, turns for
//                         pipelined requests, parked requests, answering,
//                         writing, buffer accounting, closing;
//   event_transport.cpp   its bytes in and out: a plain socket or TLS.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <openssl/ssl.h>

#include "common/event_http_server.hpp"

namespace cw {

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

struct TlsFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
};

struct Connection {
    FileDescriptor fd;
    std::unique_ptr<SSL, TlsFree> tls;  // set on a TLS server; the handshake happens on the first reads
    bool tls_read_wants_write = false;  // OpenSSL must send before it can read more (handshake, key update)
    bool tls_write_wants_read = false;
    std::string in;
    std::size_t want_input = 0;  // head and body of the request being received, once its head is read
    std::string out;
    std::size_t out_offset = 0;
    Steady::time_point last_request;  // accept, or the last complete request
    Steady::time_point head_started;  // the first byte of the unparsed input arrived
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
    // Since when the connection has waited on its client: the first byte of
    // the unfinished request it holds, else its accept or last request.
    [[nodiscard]] Steady::time_point waiting_since() const { return in.empty() ? last_request : head_started; }
    // Waiting on the client for (the rest of) a request: never asked
    // anything (over TLS: handshake included), or holds part of a request.
    // The server owes it nothing yet.
    [[nodiscard]] bool awaiting_head() const
    {
        return !parked && pending_output() == 0 && !close_after_write && (!in.empty() || !asked_anything);
    }
};

// Bytes in and out of one connection, plain or TLS (event_transport.cpp).
enum class IoStatus { moved, blocked, closed };
struct IoResult {
    IoStatus status;
    std::size_t bytes = 0;
};
IoResult receive(Connection& connection, char* buffer, std::size_t size);
IoResult transmit(Connection& connection, const char* data, std::size_t size);
// Decrypted bytes OpenSSL holds that epoll cannot signal: read them without waiting.
bool tls_input_held(const Connection& connection);
// Sends close_notify if the handshake finished; never waits for the peer's.
void tls_say_goodbye(Connection& connection);

struct EventHttpServer::Impl {
    // One epoll loop; it owns the connections it accepted.
    class Loop {
    public:
        explicit Loop(Impl& server);

        // The loop (event_loop.cpp).
        void listen_on(int socket_fd);
        void notify();
        void run();
        // Closes newcomers handed over but never adopted. A loop still
        // running may hand one to a loop that has already left run(), so
        // the server calls this again once every loop has been joined.
        void close_handed_over();

        // Admission (event_admission.cpp); these are called by other loops too.
        void hand_over(int fd);
        void request_eviction();
        void evict_for_others();
        [[nodiscard]] std::size_t connection_count() const { return m_connection_count.load(); }

    private:
        // At the cap, a newcomer takes the slot of the connection that has
        // been idle longest: a keep-alive client loses nothing (its pool
        // reconnects), while camping on every slot no longer locks others out.
        // With nothing idle, the connection that has waited longest on an
        // unfinished request head gives its slot up: half a head costs the
        // server nothing to drop, and a slot held by one would otherwise be
        // a slot no caller can win.
        // Out of descriptors (`Spare::fresh`), a connection that has not yet
        // had a second to send its first request is spared: it came before
        // the caller waiting, and giving its descriptor to that caller would
        // only trade one unanswered client for another.
        enum class Spare { none, fresh };

        // The loop (event_loop.cpp).
        void add(int fd, std::uint32_t events);
        void modify(int fd, std::uint32_t events);
        int wait_timeout(Steady::time_point next_sweep) const;
        void sweep(Steady::time_point now);

        // Admission (event_admission.cpp).
        void accept_all();
        [[nodiscard]] bool caller_waiting() const;
        void adopt_handed_over();
        Loop* fullest_other_loop();
        void refuse(int fd);
        void add_connection(int fd);
        void pause_accepting(int error);
        bool evict_one(Spare spare = Spare::none);

        // One connection (event_connection.cpp).
        void close_connection(int fd);
        void on_ready(int fd, std::uint32_t flags);
        void read_from(Connection& connection);
        [[nodiscard]] bool may_parse(const Connection& connection) const;
        bool take_body(Connection& connection, HttpRequestHead& request);
        void serve(Connection& connection);
        void account(Connection& connection);
        void queue_turn(Connection& connection);
        void take_queued_turns();
        std::optional<HttpResponse> call_handler(const HttpRequestHead& request, bool final);
        void log_handler_failure(const HttpRequestHead& request, std::string_view what);
        void respond(Connection& connection, const HttpRequestHead* request, const HttpResponse& response,
                     bool keep_alive);
        void park(Connection& connection, HttpRequestHead request);
        void resolve_parked(Steady::time_point now);
        bool flush(Connection& connection);
        static void discard_input(int fd);

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

    Impl(EventHttpServerOptions options_in, HttpHandler handler_in, HttpObserver observer_in);

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

}  // namespace cw
