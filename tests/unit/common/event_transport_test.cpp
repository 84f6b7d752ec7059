// The event server over TLS, against a blocking OpenSSL client on loopback:
// the handshake on the loop, bytes OpenSSL holds that epoll cannot see, and
// clients that never finish a handshake.
#include <doctest/doctest.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "event_server_rig.hpp"
#include "self_signed.hpp"

using namespace cw::test;
using namespace std::chrono_literals;

namespace {

struct ContextFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using Context = std::unique_ptr<SSL_CTX, ContextFree>;

// A server context with a fresh self-signed certificate.
Context server_context()
{
    Context ctx{SSL_CTX_new(TLS_server_method())};
    const Key key = new_key();
    const std::string pem = certificate_pem(*key, 1).first;
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                        BIO_free};
    const std::unique_ptr<X509, decltype(&X509_free)> cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                          X509_free};
    REQUIRE(SSL_CTX_use_certificate(ctx.get(), cert.get()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), key.get()) == 1);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

cw::EventHttpServerOptions tls_options(SSL_CTX* ctx)
{
    cw::EventHttpServerOptions options;
    options.tls = ctx;
    return options;
}

// A blocking TLS client; a stall fails on the socket's 5 s receive timeout.
class TlsClient {
public:
    explicit TlsClient(int port) : m_socket(port), m_ctx(SSL_CTX_new(TLS_client_method())), m_ssl(SSL_new(m_ctx.get()))
    {
        SSL_set_fd(m_ssl.get(), m_socket.fd());
        REQUIRE(SSL_connect(m_ssl.get()) == 1);
    }

    void send(const std::string& data)
    {
        // One SSL_write: one TLS record for anything up to 16 KiB.
        REQUIRE(SSL_write(m_ssl.get(), data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size()));
    }

    std::string receive(int count)
    {
        std::string data;
        char buffer[4096];
        while (Client::complete_responses(data) < count) {
            const int got = SSL_read(m_ssl.get(), buffer, sizeof buffer);
            if (got <= 0) {
                break;
            }
            data.append(buffer, static_cast<std::size_t>(got));
        }
        ERR_clear_error();
        return data;
    }

private:
    struct SslFree {
        void operator()(SSL* ssl) const { SSL_free(ssl); }
    };
    Client m_socket;
    Context m_ctx;
    std::unique_ptr<SSL, SslFree> m_ssl;
};

}  // namespace

TEST_SUITE("common::EventHttpServer over TLS")
{
    TEST_CASE("requests are answered over TLS, several on one connection")
    {
        const Context ctx = server_context();
        Running running{echo_path(), tls_options(ctx.get())};
        TlsClient client{running.port()};
        client.send("GET /first HTTP/1.1\r\n\r\n");
        CHECK(client.receive(1).find("\r\n\r\n/first") != std::string::npos);
        client.send("GET /second HTTP/1.1\r\n\r\n");
        CHECK(client.receive(1).find("\r\n\r\n/second") != std::string::npos);
    }

    TEST_CASE("pipelined requests OpenSSL holds after a full read are answered, though epoll never signals them")
    {
        // One TLS record of 30 requests of 100 bytes, more than one read
        // takes with a 1 KiB head limit: the rest waits decrypted inside
        // OpenSSL, and the socket has nothing more to say. (Fewer than a
        // turn's 16 answers fit in one read, so no second turn reads on.)
        const Context ctx = server_context();
        cw::EventHttpServerOptions options = tls_options(ctx.get());
        options.max_head = 1024;
        Running running{echo_path(), options};
        TlsClient client{running.port()};
        std::string requests;
        for (int i = 10; i < 40; ++i) {
            requests += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nX-Pad: " + std::string(70, 'p') + "\r\n\r\n";
        }
        REQUIRE(requests.size() == 3000);
        client.send(requests);
        const std::string answers = client.receive(30);
        CHECK(count_of(answers, "HTTP/1.1 200 OK") == 30);
        CHECK(answers.find("\r\n\r\n/r39") != std::string::npos);
    }

    TEST_CASE("a client that never finishes its handshake is closed after the head timeout")
    {
        const Context ctx = server_context();
        cw::EventHttpServerOptions options = tls_options(ctx.get());
        options.head_timeout = 100ms;
        options.idle_timeout = 60s;
        Running running{echo_path(), options};
        Client stalled{running.port()};
        stalled.send(std::string{"\x16\x03\x01\x02\x00\x01", 6});  // the start of a ClientHello
        CHECK(stalled.closed_by_server());                          // within the 5 s receive timeout, not 60 s
    }

    TEST_CASE("at the cap, a connection stuck in its handshake makes room for a newcomer")
    {
        const Context ctx = server_context();
        cw::EventHttpServerOptions options = tls_options(ctx.get());
        options.threads = 1;
        options.max_connections = 2;
        Running running{echo_path(), options};
        Client first{running.port()};
        Client second{running.port()};
        first.send(std::string{"\x16\x03"});
        second.send(std::string{"\x16\x03"});
        REQUIRE(eventually([&] { return running.server().stats().connections == 2; }));
        TlsClient newcomer{running.port()};
        newcomer.send("GET /newcomer HTTP/1.1\r\n\r\n");
        CHECK(newcomer.receive(1).find("\r\n\r\n/newcomer") != std::string::npos);
        CHECK(running.server().stats().evictions >= 1);
    }
}
