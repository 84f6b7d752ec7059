// One connection's life: read what arrived (bounded by one request head, or
// by the head and body of the request being received), parse and answer
// each complete request in turn (a bounded number per turn, so a pipelining
// client cannot hold its loop), park a request whose answer is not ready
// yet, send, account the buffers against the server-wide bound, and close
// once nothing more can be asked or is owed.
#include "common/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "common/logging.hpp"

namespace cw {

namespace {

constexpr std::size_t k_read_chunk = 16 * 1024;
// A drained buffer keeps at most this much capacity: enough for the next
// request and answer of an SDK client (a JWT is about 1 KiB), so a keep-alive
// connection does not allocate per request, while one burst does not pin a
// connection's memory for its lifetime.
constexpr std::size_t k_kept_capacity = 4 * 1024;
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

HttpResponse error_response(const EventHttpServerOptions& options, int status, std::string_view reason)
{
    HttpResponse response;
    response.status = status;
    response.body = options.error_body ? options.error_body(status, reason)
                                       : R"({"Code":"BadRequest","Message":")" + std::string{reason} + "\"}";
    return response;
}

// A body is read only as sent with its length and unencoded: the work
// and memory it costs are then known before any of it is read.
std::optional<HttpResponse> body_refusal(const EventHttpServerOptions& options, const HttpRequestHead& request)
{
    if (request.transfer_encoded) {
        return error_response(options, 411, "a body must be sent with Content-Length, not chunked");
    }
    if (request.content_encoded) {
        return error_response(options, 415, "a compressed body is refused");
    }
    if (request.content_length > options.max_body) {
        return error_response(options, 413, "the body is larger than " + std::to_string(options.max_body) + " bytes");
    }
    return std::nullopt;
}

HttpResponse internal_error_response()
{
    HttpResponse response;
    response.status = 500;
    response.body = R"({"Code":"InternalError","Message":"the request could not be answered; see the sidecar's log"})";
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
}

}  // namespace

void EventHttpServer::Impl::Loop::close_connection(int fd)
{
    const auto it = m_connections.find(fd);
    if (it == m_connections.end()) {
        return;
    }
    if (it->second.parked) {
        --m_parked;
    }
    m_server.buffered.fetch_sub(it->second.accounted);
    tls_say_goodbye(it->second);
    m_connections.erase(it);  // the FileDescriptor closes it, which also leaves epoll
    m_connection_count.store(m_connections.size());
    m_server.active.fetch_sub(1);
}

void EventHttpServer::Impl::Loop::on_ready(int fd, std::uint32_t flags)
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
    if ((flags & (EPOLLIN | EPOLLRDHUP)) != 0 || ((flags & EPOLLOUT) != 0 && connection.tls_read_wants_write)) {
        read_from(connection);
    }
    serve(connection);
}

void EventHttpServer::Impl::Loop::read_from(Connection& connection)
{
    std::array<char, k_read_chunk> buffer{};
    // One byte over the head limit is enough for the parser to refuse
    // it; more would only be memory held for a client. Once a head
    // announced a body, the limit is that request's end. What is left
    // in the socket is read once the buffer has been parsed.
    const std::size_t max_input = std::max(connection.want_input, m_server.options.max_head + 1);
    while (connection.in.size() < max_input) {
        const std::size_t room = std::min(buffer.size(), max_input - connection.in.size());
        const IoResult got = receive(connection, buffer.data(), room);
        if (got.status == IoStatus::moved) {
            if (connection.in.empty()) {
                connection.head_started = Steady::now();
            }
            connection.in.append(buffer.data(), got.bytes);
        } else {
            if (got.status == IoStatus::closed) {
                connection.read_closed = true;  // answer what was asked, then close
            }
            return;
        }
    }
}

bool EventHttpServer::Impl::Loop::may_parse(const Connection& connection) const
{
    return !connection.parked && !connection.in.empty() && !connection.close_after_write &&
           connection.pending_output() < m_server.options.max_pending_output;
}

// Moves a request's body out of the input once all of it arrived; until
// then, records how much input the request needs (read_from stops there).
// Nothing is reserved for the length announced: memory is held for bytes
// a client has sent, not for what its head promises.
bool EventHttpServer::Impl::Loop::take_body(Connection& connection, HttpRequestHead& request)
{
    const std::size_t whole = request.head_size + request.content_length;
    if (connection.in.size() < whole) {
        connection.want_input = whole;
        return false;
    }
    connection.want_input = 0;
    if (connection.in.size() == whole) {  // nothing pipelined behind it: no copy
        request.body = std::move(connection.in);
        request.body.erase(0, request.head_size);
        connection.in.clear();
    } else {
        request.body = connection.in.substr(request.head_size, request.content_length);
        connection.in.erase(0, whole);
    }
    return true;
}

// Answers every complete request in the buffer, sending each answer
// at once, until one is parked or the client stops reading (output
// backs up); then updates what epoll watches. Called again on
// EPOLLOUT, so requests left in the buffer are answered as the
// client reads.
void EventHttpServer::Impl::Loop::serve(Connection& connection)
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
        if (connection.in.size() < connection.want_input) {
            break;  // a body is still arriving; its head is parsed again once it is whole
        }
        auto parsed = parse_http_request_head(connection.in, m_server.options.max_head);
        if (std::holds_alternative<HttpNeedMore>(parsed)) {
            break;
        }
        if (const auto* error = std::get_if<HttpParseError>(&parsed)) {
            connection.in.clear();
            respond(connection, nullptr, error_response(m_server.options, error->status, error->reason), false);
            break;
        }
        auto& request = std::get<HttpRequestHead>(parsed);
        if (request.has_body && m_server.options.max_body > 0) {
            if (const auto refusal = body_refusal(m_server.options, request)) {
                connection.in.clear();
                respond(connection, &request, *refusal, false);
                break;
            }
            if (!take_body(connection, request)) {
                break;  // the rest of the body is on its way
            }
        } else if (request.has_body) {
            request.keep_alive = false;  // bodies are not read: answer, then close
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
    if (want_read && tls_input_held(connection)) {
        queue_turn(connection);  // epoll will not say so: the bytes left the socket already
    }
    const bool in = want_read || connection.tls_write_wants_read;
    const bool out = connection.pending_output() > 0 || connection.tls_read_wants_write;
    const std::uint32_t interest = (in ? EPOLLIN | EPOLLRDHUP : 0U) | (out ? EPOLLOUT : 0U);
    if (interest != connection.interest) {
        connection.interest = interest;
        modify(fd, interest);
    }
    account(connection);
}

// Keeps the server-wide total of buffered bytes current. Past
// max_buffered, connections still holding unparsed input or unsent
// output are closed, the one that has waited longest on its client first,
// until the total fits: a client trickling a body or not reading its
// answers goes before one whose request arrived just now, and clients
// that read their answers hold nothing and are unaffected.
void EventHttpServer::Impl::Loop::account(Connection& connection)
{
    const std::size_t now = heap_bytes(connection.in) + heap_bytes(connection.out);
    std::size_t total = m_server.buffered.fetch_add(now - connection.accounted) + now - connection.accounted;
    connection.accounted = now;
    while (total > m_server.options.max_buffered) {
        const Connection* longest = nullptr;
        for (const auto& [fd, candidate] : m_connections) {
            const bool holding = candidate.accounted > 0 && (!candidate.in.empty() || candidate.pending_output() > 0);
            if (holding && !candidate.parked &&
                (longest == nullptr || candidate.waiting_since() < longest->waiting_since())) {
                longest = &candidate;
            }
        }
        if (longest == nullptr) {
            return;
        }
        total -= longest->accounted;
        m_server.shed.fetch_add(1);
        close_connection(longest->fd.get());
    }
}

void EventHttpServer::Impl::Loop::queue_turn(Connection& connection)
{
    if (!connection.has_turn_queued) {
        connection.has_turn_queued = true;
        m_turns.push_back(connection.fd.get());
    }
}

void EventHttpServer::Impl::Loop::take_queued_turns()
{
    std::vector<int> turns;
    turns.swap(m_turns);
    for (const int fd : turns) {
        if (const auto it = m_connections.find(fd); it != m_connections.end()) {
            it->second.has_turn_queued = false;
            if (tls_input_held(it->second)) {
                read_from(it->second);
            }
            serve(it->second);
        }
    }
}

// A handler that throws answers 500: one request fails, not the process.
std::optional<HttpResponse> EventHttpServer::Impl::Loop::call_handler(const HttpRequestHead& request, bool final)
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

void EventHttpServer::Impl::Loop::log_handler_failure(const HttpRequestHead& request, std::string_view what)
{
    m_server.handler_failures.fetch_add(1);
    log_event(spdlog::level::err, "request failed",
              {{"method", request.method}, {"path", request.path}, {"error", what}});
}

void EventHttpServer::Impl::Loop::respond(Connection& connection, const HttpRequestHead* request,
                                          const HttpResponse& response, bool keep_alive)
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

void EventHttpServer::Impl::Loop::park(Connection& connection, HttpRequestHead request)
{
    connection.parked = std::move(request);
    connection.park_deadline = Steady::now() + m_server.options.park_limit;
    if (m_parked == 0 || connection.park_deadline < m_next_park_deadline) {
        m_next_park_deadline = connection.park_deadline;
    }
    ++m_parked;
}

void EventHttpServer::Impl::Loop::resolve_parked(Steady::time_point now)
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
            response =
                HttpResponse{503, "application/json", R"({"Code":"Unavailable","Message":"no answer in time"})", {}};
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
bool EventHttpServer::Impl::Loop::flush(Connection& connection)
{
    const int fd = connection.fd.get();
    while (connection.pending_output() > 0) {
        const IoResult sent =
            transmit(connection, connection.out.data() + connection.out_offset, connection.pending_output());
        if (sent.status == IoStatus::moved) {
            connection.out_offset += sent.bytes;
        } else if (sent.status == IoStatus::blocked) {
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
void EventHttpServer::Impl::Loop::discard_input(int fd)
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

}  // namespace cw
