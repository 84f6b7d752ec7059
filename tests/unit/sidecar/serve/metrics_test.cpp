#include <doctest/doctest.h>

#include "common/time_format.hpp"
#include "sidecar/serve/metrics.hpp"

using namespace std::chrono_literals;

namespace {

cw::Metrics::State state()
{
    cw::Metrics::State state;
    state.version = "0.1.0";
    state.exchange_mode = "oidc";
    state.now = *cw::parse_rfc3339("2026-11-23T12:00:00Z");
    state.started_at = state.now - 1h;
    state.ready = true;
    state.credentials_expiry = state.now + 45min;
    state.credentials_lifetime = 1h;
    return state;
}

bool has_line(const std::string& text, const std::string& line)
{
    return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_SUITE("sidecar::Metrics")
{
    TEST_CASE("requests are counted by path and code")
    {
        cw::Metrics metrics;
        metrics.count_request(cw::Route::credentials, 200);
        metrics.count_request(cw::Route::credentials, 200);
        metrics.count_request(cw::Route::credentials, 403);
        metrics.count_request(cw::Route::other, 418);
        const std::string text = metrics.render(state());
        CHECK(has_line(text, R"(cwcreds_http_requests_total{path="/v1/credentials",code="200"} 2)"));
        CHECK(has_line(text, R"(cwcreds_http_requests_total{path="/v1/credentials",code="403"} 1)"));
        CHECK(has_line(text, R"(cwcreds_http_requests_total{path="other",code="other"} 1)"));
        CHECK(metrics.requests(cw::Route::credentials, 200) == 2);
    }

    TEST_CASE("exchange latencies fill a cumulative histogram")
    {
        cw::Metrics metrics;
        metrics.observe_exchange(cw::ExchangeKind::ok, 80ms);
        metrics.observe_exchange(cw::ExchangeKind::retryable, 3s);
        metrics.observe_exchange(cw::ExchangeKind::token_unavailable, 0ms);
        const std::string text = metrics.render(state());
        CHECK(has_line(text, R"(cwcreds_exchange_duration_seconds_bucket{le="0.05"} 0)"));
        CHECK(has_line(text, R"(cwcreds_exchange_duration_seconds_bucket{le="0.1"} 1)"));
        CHECK(has_line(text, R"(cwcreds_exchange_duration_seconds_bucket{le="5"} 2)"));
        CHECK(has_line(text, R"(cwcreds_exchange_duration_seconds_bucket{le="+Inf"} 2)"));
        CHECK(has_line(text, "cwcreds_exchange_duration_seconds_count 2"));
        CHECK(has_line(text, "cwcreds_exchange_duration_seconds_sum 3.08"));
        CHECK(has_line(text, R"(cwcreds_exchanges_total{result="token-unavailable"} 1)"));
    }

    TEST_CASE("each exchange result is counted under its own name: a rejected token never passes for a fault")
    {
        cw::Metrics metrics;
        const std::pair<cw::ExchangeKind, int> results[] = {{cw::ExchangeKind::ok, 1},
                                                            {cw::ExchangeKind::rejected, 2},
                                                            {cw::ExchangeKind::retryable, 3},
                                                            {cw::ExchangeKind::malformed, 4},
                                                            {cw::ExchangeKind::token_unavailable, 5}};
        for (const auto& [kind, count] : results) {
            for (int i = 0; i < count; ++i) {
                metrics.observe_exchange(kind, 10ms);
            }
        }
        const std::string text = metrics.render(state());
        CHECK(has_line(text, R"(cwcreds_exchanges_total{result="ok"} 1)"));
        CHECK(has_line(text, R"(cwcreds_exchanges_total{result="rejected"} 2)"));
        CHECK(has_line(text, R"(cwcreds_exchanges_total{result="retryable"} 3)"));
        CHECK(has_line(text, R"(cwcreds_exchanges_total{result="malformed"} 4)"));
        CHECK(has_line(text, R"(cwcreds_exchanges_total{result="token-unavailable"} 5)"));
    }

    TEST_CASE("state gauges follow what the sidecar holds")
    {
        const std::string text = cw::Metrics{}.render(state());
        CHECK(has_line(text, "cwcreds_ready 1"));
        CHECK(has_line(text, "cwcreds_credentials_expires_in_seconds 2700"));
        CHECK(has_line(text, "cwcreds_credentials_lifetime_seconds 3600"));
        CHECK(has_line(text, R"(cwcreds_build_info{version="0.1.0",exchange="oidc"} 1)"));
        auto none = state();
        none.credentials_expiry.reset();
        none.ready = false;
        const std::string empty = cw::Metrics{}.render(none);
        CHECK(has_line(empty, "cwcreds_ready 0"));
        CHECK(empty.find("\ncwcreds_credentials_expires_in_seconds ") == std::string::npos);
    }

    TEST_CASE("every sample directly follows its own family's TYPE line")
    {
        cw::Metrics metrics;
        metrics.count_request(cw::Route::healthz, 200);
        const std::string text = metrics.render(state());
        std::string family;
        std::size_t start = 0;
        while (start < text.size()) {
            const std::size_t end = text.find('\n', start);
            const std::string line = text.substr(start, end - start);
            start = end + 1;
            if (line.rfind("# TYPE ", 0) == 0) {
                family = line.substr(7, line.find(' ', 7) - 7);
            } else if (line.rfind('#', 0) != 0) {
                CAPTURE(line);
                CHECK(line.rfind(family, 0) == 0);
            }
        }
    }
}
