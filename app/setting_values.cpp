#include "app/setting_values.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>

#include <spdlog/fmt/fmt.h>

#include "common/duration.hpp"

namespace cw {

Millis duration_value(std::string_view text)
{
    const auto parsed = parse_duration(text);
    if (!parsed) {
        throw BadValue{"'" + std::string{text} + "' is not a duration (examples: 300ms, 45s, 15m, 2h)"};
    }
    return *parsed;
}

std::string duration_text(Millis duration)
{
    const auto ms = duration.count();
    if (ms % 3'600'000 == 0) {
        return std::to_string(ms / 3'600'000) + "h";
    }
    if (ms % 60'000 == 0) {
        return std::to_string(ms / 60'000) + "m";
    }
    if (ms % 1000 == 0) {
        return std::to_string(ms / 1000) + "s";
    }
    return std::to_string(ms) + "ms";
}

Millis positive_duration(std::string_view text)
{
    const Millis value = duration_value(text);
    if (value.count() <= 0) {
        throw BadValue{"must be longer than 0s"};
    }
    return value;
}

double fraction_value(std::string_view text, double low, double high)
{
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    // Written so that NaN, which from_chars accepts and which fails every
    // comparison, is refused too.
    if (error != std::errc{} || end != text.data() + text.size() || !(value >= low && value <= high)) {
        throw BadValue{fmt::format("'{}' is not a number from {} to {}", text, low, high)};
    }
    return value;
}

std::size_t count_value(std::string_view text, std::size_t low, std::size_t high)
{
    std::size_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || value < low || value > high) {
        throw BadValue{fmt::format("'{}' is not a whole number from {} to {}", text, low, high)};
    }
    return value;
}

bool switch_value(std::string_view text)
{
    if (text == "1" || text == "true" || text == "yes" || text == "on") {
        return true;
    }
    if (text.empty() || text == "0" || text == "false" || text == "no" || text == "off") {
        return false;
    }
    throw BadValue{"'" + std::string{text} + "' is not true or false"};
}

std::string non_empty(std::string_view text)
{
    if (text.empty()) {
        throw BadValue{"must not be empty"};
    }
    return std::string{text};
}

HostPort host_port(std::string_view text)
{
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        throw BadValue{"'" + std::string{text} + "' is not HOST:PORT (example: 127.0.0.1:9911)"};
    }
    std::string_view host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned port = 0;
    const std::string_view port_text = text.substr(colon + 1);
    const auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
        throw BadValue{"'" + std::string{port_text} + "' is not a port number (0-65535)"};
    }
    std::array<unsigned char, 16> address{};
    const std::string host_string{host};
    if (host != "localhost" && inet_pton(AF_INET, host_string.c_str(), address.data()) != 1 &&
        inet_pton(AF_INET6, host_string.c_str(), address.data()) != 1) {
        throw BadValue{"'" + host_string + "' is not an IP address or localhost"};
    }
    return {host == "localhost" ? "127.0.0.1" : host_string, static_cast<std::uint16_t>(port)};
}

}  // namespace cw
