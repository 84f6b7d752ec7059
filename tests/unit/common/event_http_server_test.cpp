// The event-loop server over real loopback sockets.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/event_http_server.hpp"

using namespace std::chrono_literals;

namespace {

// A server on an ephemeral port whose handler a test sets.
class Running {
public:
    explicit Running(cw::HttpHandler handler, cw::EventHttpServerOptions options = {})
        : m_server(options, std::move(handler))
    {
        m_port = m_server.bind();
        m_thread = std::thread{[this] { m_server.run(); }};
    }
    ~Running()
    {
        m_server.stop();
        m_thread.join();
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

    [[nodiscard]] int port() const { return m_port; }
    cw::EventHttpServer& server() { return m_server; }

private:
    cw::EventHttpServer m_server;
    int m_port = 0;
    std::thread m_thread;
};

// A blocking client socket with a receive timeout, so a stall fails the test.
class Client {
public:
    enum class Connect { now, later };
    explicit Client(int port, Connect when = Connect::now, int receive_buffer = 0)
        : m_fd(::socket(AF_INET, SOCK_STREAM, 0)), m_port(port)
    {
        timeval timeout{5, 0};
        setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        if (receive_buffer > 0) {
            setsockopt(m_fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        }
        if (when == Connect::now) {
            connect();
        }
    }

    // Needs no new descriptor: the socket exists already.
    void connect()
    {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(m_port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    }
    ~Client() { ::close(m_fd); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void send(const std::string& data)
    {
        REQUIRE(::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
    }

    // Reads until `count` complete responses (by Content-Length) or EOF.
    std::string receive(int count)
    {
        std::string data;
        char buffer[4096];
        while (complete_responses(data) < count) {
            const ssize_t got = ::recv(m_fd, buffer, sizeof buffer, 0);
            if (got <= 0) {
                break;
            }
            data.append(buffer, static_cast<std::size_t>(got));
        }
        return data;
    }

    // True when the server has closed the connection.
    bool closed_by_server()
    {
        char byte = 0;
        return ::recv(m_fd, &byte, 1, 0) == 0;
    }

private:
    static int complete_responses(const std::string& data)
    {
        int count = 0;
        std::size_t position = 0;
        for (;;) {
            const auto end = data.find("\r\n\r\n", position);
            if (end == std::string::npos) {
                return count;
            }
            const auto length_at = data.find("Content-Length: ", position);
            const auto length = std::stoul(data.substr(length_at + 16, 20));
            if (data.size() < end + 4 + length) {
                return count;
            }
            position = end + 4 + length;
            ++count;
        }
    }

    int m_fd;
    int m_port;
};

// Waits for a condition the server reaches on its own; false after 5 s.
template <typename Condition>
bool eventually(Condition condition)
{
    for (int i = 0; i < 1000; ++i) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return condition();
}

// Counts occurrences of `needle`.
std::size_t count_of(const std::string& text, std::string_view needle)
{
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) {
        ++count;
    }
    return count;
}

// Lowers this process's descriptor limit and takes every descriptor left
// under it, so the next accept4 fails with EMFILE; gives all back when done.
class DescriptorExhaustion {
public:
    DescriptorExhaustion()
    {
        getrlimit(RLIMIT_NOFILE, &m_saved);
        rlimit lowered = m_saved;
        lowered.rlim_cur = std::min<rlim_t>(m_saved.rlim_cur, 256);
        setrlimit(RLIMIT_NOFILE, &lowered);
        for (;;) {
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                break;
            }
            m_taken.push_back(fd);
        }
    }
    ~DescriptorExhaustion() { release(); }
    DescriptorExhaustion(const DescriptorExhaustion&) = delete;
    DescriptorExhaustion& operator=(const DescriptorExhaustion&) = delete;

    // Frees one descriptor for the server to accept into.
    void give_back_one()
    {
        REQUIRE(!m_taken.empty());
        ::close(m_taken.back());
        m_taken.pop_back();
    }

    void release()
    {
        for (const int fd : m_taken) {
            ::close(fd);
        }
        m_taken.clear();
        setrlimit(RLIMIT_NOFILE, &m_saved);
    }

private:
    rlimit m_saved{};
    std::vector<int> m_taken;
};

// One loop held inside a handler (GET /hold) while callers queue up behind
// it; the holder then has half a second request pending, so it is never
// idle. Accepts again, pausing 50 ms when out of descriptors, on release().
class HeldLoop {
public:
    HeldLoop()
        : m_released(m_release.get_future().share()),
          m_running{[this](const cw::HttpRequestHead& request, bool) {
                        if (request.path == "/hold") {
                            m_holding = true;
                            m_released.wait();
                        }
                        return std::optional<cw::HttpResponse>{
                            cw::HttpResponse{200, "text/plain", request.path, {}}};
                    },
                    options()},
          m_holder{m_running.port()}
    {
        m_holder.send("GET /hold HTTP/1.1\r\n\r\nGET /later HTTP/1.1\r\n");
        REQUIRE(eventually([this] { return m_holding.load(); }));
    }

    ~HeldLoop() { release(); }  // a failed check must not leave the loop held at shutdown
    HeldLoop(const HeldLoop&) = delete;
    HeldLoop& operator=(const HeldLoop&) = delete;

    [[nodiscard]] int port() const { return m_running.port(); }
    cw::EventHttpServer& server() { return m_running.server(); }
    void release()
    {
        if (!m_was_released.exchange(true)) {
            m_release.set_value();
        }
    }
    bool holder_answered() { return m_holder.receive(1).find("\r\n\r\n/hold") != std::string::npos; }

private:
    static cw::EventHttpServerOptions options()
    {
        cw::EventHttpServerOptions options;
        options.threads = 1;
        options.accept_pause = 50ms;
        return options;
    }

    std::atomic<bool> m_holding{false};
    std::atomic<bool> m_was_released{false};
    std::promise<void> m_release;
    std::shared_future<void> m_released;
    Running m_running;
    Client m_holder;
};

cw::HttpHandler echo_path()
{
    return [](const cw::HttpRequestHead& request, bool) {
        return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", request.path, {}}};
    };
}

}  // namespace

TEST_SUITE("common::EventHttpServer")
{
    TEST_CASE("answers pipelined requests in order on one connection")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
        const std::string answers = client.receive(3);
        const auto a = answers.find("\r\n\r\n/a");
        const auto b = answers.find("\r\n\r\n/b");
        const auto c = answers.find("\r\n\r\n/c");
        REQUIRE(a != std::string::npos);
        REQUIRE(b != std::string::npos);
        REQUIRE(c != std::string::npos);
        CHECK(a < b);
        CHECK(b < c);
    }

    TEST_CASE("Connection: close is honoured after the answer")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET /x HTTP/1.1\r\nConnection: close\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.find("Connection: close\r\n") != std::string::npos);
        CHECK(client.closed_by_server());
    }

    TEST_CASE("a request split across packets is answered once complete")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET /split HT");
        client.send("TP/1.1\r\nHost: x\r\n");
        client.send("\r\n");
        CHECK(client.receive(1).find("\r\n\r\n/split") != std::string::npos);
    }

    TEST_CASE("an oversized head gets 431 and the connection closes")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("GET / HTTP/1.1\r\nAuthorization: " + std::string(64 * 1024, 'x') + "\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.rfind("HTTP/1.1 431 ", 0) == 0);
        CHECK(client.closed_by_server());
    }

    TEST_CASE("a parked request is answered on wake(), without blocking others")
    {
        std::atomic<bool> ready{false};
        Running running{[&](const cw::HttpRequestHead& request, bool) -> std::optional<cw::HttpResponse> {
                            if (request.path == "/wait" && !ready) {
                                return std::nullopt;
                            }
                            return cw::HttpResponse{200, "text/plain", request.path, {}};
                        },
                        [] {
                            cw::EventHttpServerOptions options;
                            options.threads = 1;  // the parked request and the other share the loop
                            options.park_limit = 60s;
                            return options;
                        }()};
        Client waiting{running.port()};
        waiting.send("GET /wait HTTP/1.1\r\n\r\n");
        Client other{running.port()};
        other.send("GET /now HTTP/1.1\r\n\r\n");
        CHECK(other.receive(1).find("/now") != std::string::npos);
        ready = true;
        running.server().wake();
        CHECK(waiting.receive(1).find("\r\n\r\n/wait") != std::string::npos);
    }

    TEST_CASE("a parked request past its limit gets the handler's final answer")
    {
        Running running{[](const cw::HttpRequestHead&, bool final) -> std::optional<cw::HttpResponse> {
                            if (!final) {
                                return std::nullopt;
                            }
                            return cw::HttpResponse{503, "application/json", R"({"Code":"Late"})", {}};
                        },
                        [] {
                            cw::EventHttpServerOptions options;
                            options.park_limit = 50ms;
                            return options;
                        }()};
        Client client{running.port()};
        client.send("GET / HTTP/1.1\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
        CHECK(answer.find(R"({"Code":"Late"})") != std::string::npos);
    }

    TEST_CASE("at the cap, with every connection mid-request, a newcomer is refused and the others served")
    {
        cw::EventHttpServerOptions options;
        options.max_connections = 2;
        options.threads = 1;
        Running running{echo_path(), options};
        Client first{running.port()};
        Client second{running.port()};
        const std::string half = "GET /1 HTTP/1.1\r\nHost: example\r\n";
        first.send(half);
        second.send(half);
        REQUIRE(eventually([&] { return running.server().stats().buffered_bytes >= 2 * half.size(); }));
        Client third{running.port()};
        CHECK(third.closed_by_server());
        CHECK(running.server().stats().refusals == 1);
        first.send("\r\n");
        CHECK(first.receive(1).find("\r\n\r\n/1") != std::string::npos);
    }

    TEST_CASE("at the cap, the connection idle longest makes room for a newcomer")
    {
        cw::EventHttpServerOptions options;
        options.max_connections = 3;
        options.threads = 1;
        Running running{echo_path(), options};
        // Campers: each asked once and now holds a keep-alive slot.
        Client oldest{running.port()};
        oldest.send("GET /a HTTP/1.1\r\n\r\n");
        REQUIRE(oldest.receive(1).find("/a") != std::string::npos);
        Client middle{running.port()};
        middle.send("GET /b HTTP/1.1\r\n\r\n");
        REQUIRE(middle.receive(1).find("/b") != std::string::npos);
        Client newest{running.port()};
        newest.send("GET /c HTTP/1.1\r\n\r\n");
        REQUIRE(newest.receive(1).find("/c") != std::string::npos);

        Client newcomer{running.port()};
        newcomer.send("GET /new HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/new") != std::string::npos);
        CHECK(oldest.closed_by_server());
        middle.send("GET /b2 HTTP/1.1\r\n\r\n");
        CHECK(middle.receive(1).find("/b2") != std::string::npos);
        CHECK(running.server().stats().evictions == 1);
    }

    TEST_CASE("at the cap, with several loops, every newcomer is answered and the cap holds")
    {
        // Loops own their connections; campers may all sit on one of them.
        cw::EventHttpServerOptions options;
        options.max_connections = 8;
        options.threads = 4;
        Running running{echo_path(), options};
        std::vector<std::unique_ptr<Client>> clients;
        for (int i = 0; i < 40; ++i) {
            clients.push_back(std::make_unique<Client>(running.port()));
            clients.back()->send("GET /n" + std::to_string(i) + " HTTP/1.1\r\n\r\n");
            CAPTURE(i);
            CHECK(clients.back()->receive(1).find("\r\n\r\n/n" + std::to_string(i)) != std::string::npos);
        }
        CHECK(running.server().stats().refusals == 0);
        CHECK(running.server().stats().connections <= 8);
    }

    TEST_CASE("2,000 requests pipelined in one write are all answered, in order")
    {
        // Answers of about 300 bytes: 2,000 of them are more than the
        // server queues for one client before it waits for the client to read.
        Running running{[](const cw::HttpRequestHead& request, bool) {
            return std::optional<cw::HttpResponse>{
                cw::HttpResponse{200, "text/plain", std::string(200, '.') + request.path, {}}};
        }};
        Client client{running.port()};
        std::string requests;
        for (int i = 0; i < 2000; ++i) {
            requests += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: example\r\n\r\n";
        }
        client.send(requests);
        const std::string answers = client.receive(2000);
        CHECK(count_of(answers, "HTTP/1.1 200 OK\r\n") == 2000);
        CHECK(answers.find("./1999") != std::string::npos);
        CHECK(answers.find("./1999") > answers.find("./1998"));
    }

    TEST_CASE("a client pipelining hundreds of requests does not keep its loop from another client")
    {
        std::atomic<int> hog_answers{0};
        std::atomic<int> hog_answers_when_other_served{-1};
        std::atomic<bool> other_sent{false};
        cw::EventHttpServerOptions options;
        options.threads = 1;  // both clients on the same loop
        Running running{[&](const cw::HttpRequestHead& request, bool) {
                            if (request.path == "/other") {
                                hog_answers_when_other_served = hog_answers.load();
                            } else {
                                // The first hog request waits until the other request is in the kernel.
                                while (!other_sent.load()) {
                                    std::this_thread::yield();
                                }
                                ++hog_answers;
                            }
                            return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", "x", {}}};
                        },
                        options};
        Client hog{running.port()};
        std::string requests;
        for (int i = 0; i < 2000; ++i) {
            requests += "GET /h HTTP/1.1\r\n\r\n";
        }
        hog.send(requests);
        Client other{running.port()};
        other.send("GET /other HTTP/1.1\r\n\r\n");
        other_sent = true;
        CHECK(other.receive(1).find("\r\n\r\nx") != std::string::npos);
        CAPTURE(hog_answers_when_other_served.load());
        // Turns of 16 answers, a few rounds at most; a loop serving the hog
        // alone answers all that one read brought in (16 KiB: over 800).
        CHECK(hog_answers_when_other_served.load() <= 200);
        CHECK(count_of(hog.receive(2000), "HTTP/1.1 200 OK\r\n") == 2000);
    }

    TEST_CASE("a client that pipelines and never reads holds a bounded buffer, released once it reads")
    {
        const std::string body(16 * 1024, 'x');
        std::atomic<int> answered{0};
        cw::EventHttpServerOptions options;
        options.threads = 1;
        Running running{[&](const cw::HttpRequestHead&, bool) {
                            ++answered;
                            return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", body, {}}};
                        },
                        options};
        // 600 answers of 16 KiB are 9.6 MB: more than the kernel's socket
        // buffers between the two ends can take, so the server must hold or stop.
        constexpr int k_requests = 600;
        Client hog{running.port(), Client::Connect::now, 4096};
        std::string requests;
        for (int i = 0; i < k_requests; ++i) {
            requests += "GET /big HTTP/1.1\r\n\r\n";
        }
        hog.send(requests);
        // Wait until the server has stopped answering (the socket is full).
        int seen = -1;
        REQUIRE(eventually([&] {
            const int now = answered.load();
            const bool settled = now == seen && now > 0;
            seen = now;
            std::this_thread::sleep_for(20ms);
            return settled;
        }));
        CHECK(answered.load() < k_requests);  // parsing paused while output waits
        const auto held = running.server().stats().buffered_bytes;
        CAPTURE(held);
        // The output cap plus one answer, at most doubled by string growth.
        CHECK(held <= 2 * (options.max_pending_output + body.size() + 1024));

        const std::string answers = hog.receive(k_requests);
        CHECK(count_of(answers, "HTTP/1.1 200 OK\r\n") == k_requests);
        CHECK(eventually([&] { return running.server().stats().buffered_bytes <= 8 * 1024; }));
    }

    TEST_CASE("past the server-wide buffer limit, connections holding buffers are closed, readers unaffected")
    {
        const std::string body(16 * 1024, 'x');
        cw::EventHttpServerOptions options;
        options.threads = 1;
        options.max_buffered = 256 * 1024;
        Running running{[&](const cw::HttpRequestHead&, bool) {
                            return std::optional<cw::HttpResponse>{cw::HttpResponse{200, "text/plain", body, {}}};
                        },
                        options};
        std::string requests;
        for (int i = 0; i < 600; ++i) {
            requests += "GET /big HTTP/1.1\r\n\r\n";
        }
        std::vector<std::unique_ptr<Client>> hogs;
        for (int i = 0; i < 8; ++i) {
            hogs.push_back(std::make_unique<Client>(running.port(), Client::Connect::now, 4096));
            hogs.back()->send(requests);
        }
        REQUIRE(eventually([&] { return running.server().stats().shed > 0; }));
        CHECK(running.server().stats().buffered_bytes <= options.max_buffered + 2 * (body.size() + 1024));
        Client reader{running.port()};
        reader.send("GET /small HTTP/1.1\r\n\r\n");
        CHECK(reader.receive(1).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    }

    TEST_CASE("when descriptors run out, accepting pauses instead of spinning, then resumes")
    {
        cw::EventHttpServerOptions options;
        options.threads = 1;
        options.accept_pause = 100ms;
        Running running{echo_path(), options};
        Client client{running.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        client.connect();  // completes in the kernel's backlog; accept4 gets EMFILE
        client.send("GET /waited HTTP/1.1\r\n\r\n");
        REQUIRE(eventually([&] { return running.server().stats().accept_pauses >= 1; }));
        // A window rather than a condition: what is checked is that nothing
        // happens. A loop woken again at once fails thousands of times in it;
        // a paused one at most once per pause.
        const auto before = running.server().stats().accept_pauses;
        std::this_thread::sleep_for(500ms);
        CHECK(running.server().stats().accept_pauses - before <= 500ms / options.accept_pause + 1);
        exhaustion.release();
        CHECK(client.receive(1).find("\r\n\r\n/waited") != std::string::npos);
    }

    TEST_CASE("out of descriptors, each newcomer costs exactly one idle connection, the oldest")
    {
        cw::EventHttpServerOptions options;
        options.threads = 1;
        Running running{echo_path(), options};
        Client oldest{running.port()};
        oldest.send("GET /a HTTP/1.1\r\n\r\n");
        REQUIRE(oldest.receive(1).find("/a") != std::string::npos);
        Client newer{running.port()};
        newer.send("GET /b HTTP/1.1\r\n\r\n");
        REQUIRE(newer.receive(1).find("/b") != std::string::npos);
        Client newcomer{running.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        newcomer.connect();
        newcomer.send("GET /new HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/new") != std::string::npos);
        CHECK(oldest.closed_by_server());
        // Having accepted the newcomer, the server is out of descriptors
        // again with nobody waiting: the other keep-alive caller stays.
        newer.send("GET /b2 HTTP/1.1\r\n\r\n");
        CHECK(newer.receive(1).find("/b2") != std::string::npos);
        CHECK(running.server().stats().evictions == 1);
        CHECK(running.server().stats().accept_pauses == 0);
    }

    TEST_CASE("out of descriptors, a connection whose request is not read yet is not taken for idle")
    {
        HeldLoop held;
        Client first{held.port(), Client::Connect::later};
        Client second{held.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        exhaustion.give_back_one();
        first.connect();
        first.send("GET /first HTTP/1.1\r\n\r\n");
        second.connect();
        second.send("GET /second HTTP/1.1\r\n\r\n");
        held.release();
        // `first` takes the free descriptor; `second` waits for it to be
        // answered and idle, not the other way round.
        CHECK(first.receive(1).find("\r\n\r\n/first") != std::string::npos);
        CHECK(second.receive(1).find("\r\n\r\n/second") != std::string::npos);
        CHECK(held.holder_answered());
    }

    TEST_CASE("out of descriptors, a connection that has not had time to ask is not given up for a later caller")
    {
        HeldLoop held;
        Client first{held.port(), Client::Connect::later};
        Client second{held.port(), Client::Connect::later};
        DescriptorExhaustion exhaustion;
        exhaustion.give_back_one();
        first.connect();  // connected, its request not sent yet
        second.connect();
        second.send("GET /second HTTP/1.1\r\n\r\n");
        held.release();
        // `first` is accepted into the free descriptor; `second` waits.
        REQUIRE(eventually([&] { return held.server().stats().accept_pauses >= 1; }));
        first.send("GET /first HTTP/1.1\r\n\r\n");
        CHECK(first.receive(1).find("\r\n\r\n/first") != std::string::npos);
        CHECK(second.receive(1).find("\r\n\r\n/second") != std::string::npos);
    }

    TEST_CASE("a handler that throws gets its caller a 500 without the exception's text, and the server goes on")
    {
        Running running{[](const cw::HttpRequestHead& request, bool) -> std::optional<cw::HttpResponse> {
            if (request.path == "/boom") {
                throw std::runtime_error("secret-detail-42");
            }
            return cw::HttpResponse{200, "text/plain", request.path, {}};
        }};
        Client client{running.port()};
        client.send("GET /boom HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
        const std::string answers = client.receive(2);
        CHECK(answers.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0) == 0);
        CHECK(answers.find(R"("Code":"InternalError")") != std::string::npos);
        CHECK(answers.find("secret-detail-42") == std::string::npos);
        CHECK(answers.find("\r\n\r\n/after") != std::string::npos);
        CHECK(running.server().stats().handler_failures == 1);
    }

    TEST_CASE("without keep-alive, every answer says Connection: close and the connection closes")
    {
        cw::EventHttpServerOptions options;
        options.keep_alive = false;
        Running running{echo_path(), options};
        Client client{running.port()};
        client.send("GET /probe HTTP/1.1\r\n\r\n");
        CHECK(client.receive(1).find("Connection: close\r\n") != std::string::npos);
        CHECK(client.closed_by_server());
    }

    TEST_CASE("HEAD gets the headers without the body")
    {
        Running running{echo_path()};
        Client client{running.port()};
        client.send("HEAD /body HTTP/1.1\r\nConnection: close\r\n\r\n");
        const std::string answer = client.receive(1);
        CHECK(answer.find("Content-Length: 5\r\n") != std::string::npos);
        CHECK(answer.find("/body") == std::string::npos);
    }

    TEST_CASE("a connection that never asks anything is closed after the head timeout, not the idle one")
    {
        cw::EventHttpServerOptions options;
        options.head_timeout = 100ms;
        options.idle_timeout = 60s;
        Running running{echo_path(), options};
        Client silent{running.port()};
        CHECK(silent.closed_by_server());  // within the 5 s receive timeout, not 60 s

        Client talking{running.port()};
        talking.send("GET /kept HTTP/1.1\r\n\r\n");
        CHECK(talking.receive(1).find("/kept") != std::string::npos);
    }
}
