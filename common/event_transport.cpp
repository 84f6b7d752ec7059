// A connection's bytes in and out: recv/send on a plain socket, OpenSSL on a
// TLS one. OpenSSL is driven non-blocking on the loop's thread: a call that
// cannot go on says which way it waits (WANT_READ, WANT_WRITE), and the
// connection's epoll interest follows. The handshake is finished by the
// first reads, so a client that never completes it is one more connection
// waiting on its first request: the head timeout and eviction apply.
#include "common/event_loop.hpp"

#include <openssl/err.h>
#include <sys/socket.h>

#include <cerrno>

namespace cw {

namespace {

// What an SSL_* call that did not move bytes means for the connection.
// Either direction may block: a read can need a write (the handshake's
// answer, a TLS 1.3 key update) and a write a read.
IoResult tls_outcome(Connection& connection, int result, bool reading)
{
    const int error = SSL_get_error(connection.tls.get(), result);
    ERR_clear_error();
    if (error == SSL_ERROR_WANT_READ) {
        connection.tls_write_wants_read = !reading;
        return {IoStatus::blocked};
    }
    if (error == SSL_ERROR_WANT_WRITE) {
        connection.tls_read_wants_write = reading;
        return {IoStatus::blocked};
    }
    if (error != SSL_ERROR_ZERO_RETURN) {
        // After a fatal error OpenSSL must not be asked to shut down: mark
        // the close_notify as sent so tls_say_goodbye leaves it.
        SSL_set_shutdown(connection.tls.get(), SSL_SENT_SHUTDOWN);
    }
    return {IoStatus::closed};  // close_notify, a reset, or a TLS error
}

}  // namespace

IoResult receive(Connection& connection, char* buffer, std::size_t size)
{
    if (!connection.tls) {
        for (;;) {
            const ssize_t got = ::recv(connection.fd.get(), buffer, size, 0);
            if (got > 0) {
                return {IoStatus::moved, static_cast<std::size_t>(got)};
            }
            if (got < 0 && errno == EINTR) {
                continue;
            }
            return {got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? IoStatus::blocked : IoStatus::closed};
        }
    }
    SSL* ssl = connection.tls.get();
    connection.tls_read_wants_write = false;
    if (SSL_is_init_finished(ssl) == 0) {
        const int result = SSL_do_handshake(ssl);
        if (result != 1) {
            return tls_outcome(connection, result, true);
        }
    }
    std::size_t got = 0;
    const int result = SSL_read_ex(ssl, buffer, size, &got);
    if (result == 1) {
        return {IoStatus::moved, got};
    }
    return tls_outcome(connection, result, true);
}

IoResult transmit(Connection& connection, const char* data, std::size_t size)
{
    if (!connection.tls) {
        for (;;) {
            const ssize_t sent = ::send(connection.fd.get(), data, size, MSG_NOSIGNAL);
            if (sent > 0) {
                return {IoStatus::moved, static_cast<std::size_t>(sent)};
            }
            if (sent < 0 && errno == EINTR) {
                continue;
            }
            return {sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? IoStatus::blocked : IoStatus::closed};
        }
    }
    connection.tls_write_wants_read = false;
    std::size_t sent = 0;
    const int result = SSL_write_ex(connection.tls.get(), data, size, &sent);
    if (result == 1) {
        return {IoStatus::moved, sent};
    }
    return tls_outcome(connection, result, false);
}

bool tls_input_held(const Connection& connection)
{
    return connection.tls && SSL_pending(connection.tls.get()) > 0;
}

void tls_say_goodbye(Connection& connection)
{
    if (connection.tls && SSL_is_init_finished(connection.tls.get()) == 1 &&
        (SSL_get_shutdown(connection.tls.get()) & SSL_SENT_SHUTDOWN) == 0) {
        (void)SSL_shutdown(connection.tls.get());
        ERR_clear_error();
    }
}

}  // namespace cw
