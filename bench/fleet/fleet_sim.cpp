// fleet_sim: what cwcreds' refresh policy does to the upstream when a whole
// fleet runs it.
//
// Each simulated pod is a real cw::Refresher (the library's refresh policy and
// backoff, unchanged) with its own metrics, all on one fake clock and one
// model upstream (upstream_model.hpp). An event queue calls each pod's
// step() exactly when that pod said its next attempt is due, so 24 hours of
// 10,000 pods take seconds. Per scenario it reports the upstream request rate
// (peak and p99 of 1-second bins), exchanges per pod-hour, pod-seconds
// without servable credentials (before the first key, inside an outage, and
// anywhere else: the last should be 0), and how retries spread after an
// outage ends.
//
//   fleet_sim [--pods N] [--hours H] [--jitter F] [--seed S] [--series DIR] [--out FILE] [--smoke]
//
// --series writes one `<scenario>.dat` per scenario (second, requests) for
// bench/fleet/plot.gp. Nothing is asserted: a benchmark reports.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench/fleet/upstream_model.hpp"
#include "common/logging.hpp"
#include "common/time_format.hpp"
#include "sidecar/exchange/refresh_policy.hpp"
#include "sidecar/exchange/refresher.hpp"
#include "sidecar/serve/metrics.hpp"

namespace {

using namespace std::chrono_literals;
using cw::Millis;
using cw::SteadyTime;
using cw::SystemTime;

// Both clocks, moved only by the event loop (as tests/unit/fake_clock.hpp).
class SimClock final : public cw::Clock {
public:
    [[nodiscard]] SystemTime now() const override { return m_wall; }
    [[nodiscard]] SteadyTime steady_now() const override { return m_steady; }
    void advance_to(SteadyTime instant)
    {
        m_wall += instant - m_steady;
        m_steady = instant;
    }

private:
    SystemTime m_wall = *cw::parse_rfc3339("2026-11-23T00:00:00Z");
    SteadyTime m_steady{std::chrono::hours{1000}};
};

struct Options {
    int pods = 10'000;
    double hours = 24;
    double jitter = cw::RefreshSettings{}.refresh_jitter;
    std::uint64_t seed = 1;
    std::string series_dir;
    std::string out;
    std::string only;  // run one scenario
};

struct Scenario {
    std::string name;
    std::string description;
    Millis start_spread;  // pods start uniformly within this
    cw::fleet::UpstreamModel upstream;
};

struct Result {
    Scenario scenario;
    std::uint64_t requests = 0;
    std::uint64_t refused = 0;
    std::uint32_t peak = 0;
    std::uint32_t p99 = 0;
    double per_pod_hour = 0;
    double wait_first_total = 0;  // pod-seconds from start to the first key
    double wait_first_p99 = 0;    // seconds
    double wait_first_max = 0;
    double gap_outage = 0;  // pod-seconds without keys inside an outage
    double gap_other = 0;   // ... anywhere else after the first key
    // After the last outage: seconds until 50%, 99%, 100% of the pods that
    // failed in it held new keys, and the peak rate in the minute after.
    std::optional<double> recovered_p50, recovered_p99, recovered_max;
    std::uint32_t recovery_peak = 0;
    std::vector<std::uint32_t> per_second;
};

struct Pod {
    std::unique_ptr<cw::Metrics> metrics;
    std::unique_ptr<cw::Refresher> refresher;
    SteadyTime start;
    SteadyTime covered_until;  // serving ends here (or: the start, before any key)
    const cw::Served* served = nullptr;
    bool has_key = false;
    bool failed_in_outage = false;
};

double seconds(Millis d)
{
    return static_cast<double>(d.count()) / 1000.0;
}

double quantile(std::vector<double> values, double q)
{
    if (values.empty()) {
        return 0;
    }
    const auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
    return values[index];
}

// Seconds of [from, to) inside, and outside, the outage windows.
std::pair<double, double> split_by_outages(Millis from, Millis to, const std::vector<cw::fleet::Window>& outages)
{
    double inside = 0;
    for (const auto& w : outages) {
        const Millis a = std::max(from, w.start);
        const Millis b = std::min(to, w.end);
        if (b > a) {
            inside += seconds(b - a);
        }
    }
    return {inside, seconds(to - from) - inside};
}

Result run(const Scenario& scenario, const Options& options, const std::filesystem::path& token_file)
{
    SimClock clock;
    const SteadyTime origin = clock.steady_now();
    const auto duration = Millis{static_cast<Millis::rep>(options.hours * 3'600'000)};
    const SteadyTime end = origin + duration;
    cw::fleet::ModelUpstream upstream{clock, scenario.upstream, origin, duration};
    cw::TokenSource tokens{token_file, clock};
    auto engine = std::make_shared<std::mt19937_64>(options.seed);
    auto unit_random = [engine] { return std::uniform_real_distribution<double>{0.0, 1.0}(*engine); };
    cw::RefreshSettings settings;
    settings.refresh_jitter = options.jitter;

    std::vector<Pod> pods(static_cast<std::size_t>(options.pods));
    using Event = std::pair<SteadyTime, std::size_t>;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> due;
    for (std::size_t i = 0; i < pods.size(); ++i) {
        Pod& pod = pods[i];
        pod.metrics = std::make_unique<cw::Metrics>();
        pod.refresher = std::make_unique<cw::Refresher>(upstream, tokens, settings, *pod.metrics, clock, unit_random);
        pod.start =
            origin +
            Millis{static_cast<Millis::rep>(unit_random() * static_cast<double>(scenario.start_spread.count()))};
        pod.covered_until = pod.start;
        due.emplace(pod.start, i);
    }

    Result result;
    result.scenario = scenario;
    const Millis last_outage_end =
        scenario.upstream.outages.empty() ? Millis{-1} : scenario.upstream.outages.back().end;
    std::vector<double> first_waits;
    std::vector<double> recoveries;
    while (!due.empty() && due.top().first < end) {
        const auto [when, index] = due.top();
        due.pop();
        clock.advance_to(when);
        Pod& pod = pods[index];
        SteadyTime next = pod.refresher->step();
        const auto status = pod.refresher->status();
        if (status.served && status.served.get() != pod.served) {
            // New keys, sent now, usable once the answer arrives.
            pod.served = status.served.get();
            const SteadyTime arrival = when + scenario.upstream.latency;
            if (!pod.has_key) {
                first_waits.push_back(seconds(std::chrono::duration_cast<Millis>(arrival - pod.start)));
            } else if (arrival > pod.covered_until) {
                const auto [inside, outside] =
                    split_by_outages(std::chrono::duration_cast<Millis>(pod.covered_until - origin),
                                     std::chrono::duration_cast<Millis>(arrival - origin), scenario.upstream.outages);
                result.gap_outage += inside;
                result.gap_other += outside;
            }
            if (pod.failed_in_outage && last_outage_end.count() >= 0) {
                recoveries.push_back(seconds(std::chrono::duration_cast<Millis>(arrival - origin) - last_outage_end));
                pod.failed_in_outage = false;
            }
            pod.has_key = true;
            pod.covered_until = status.served->serve_until;
        } else if (status.consecutive_failures > 0 && last_outage_end.count() >= 0 &&
                   std::chrono::duration_cast<Millis>(when - origin) < last_outage_end &&
                   std::chrono::duration_cast<Millis>(when - origin) >= scenario.upstream.outages.back().start) {
            pod.failed_in_outage = true;
        }
        // A step never schedules the past; guard the loop anyway.
        due.emplace(std::max(next, when + 1ms), index);
    }
    for (const Pod& pod : pods) {
        if (pod.has_key && pod.covered_until < end) {
            const auto [inside, outside] = split_by_outages(
                std::chrono::duration_cast<Millis>(pod.covered_until - origin), duration, scenario.upstream.outages);
            result.gap_outage += inside;
            result.gap_other += outside;
        } else if (!pod.has_key) {
            first_waits.push_back(seconds(std::chrono::duration_cast<Millis>(end - pod.start)));
        }
    }

    result.requests = upstream.requests();
    result.refused = upstream.refused();
    result.per_second = upstream.requests_per_second();
    std::vector<double> rates(result.per_second.begin(), result.per_second.end());
    result.peak = *std::max_element(result.per_second.begin(), result.per_second.end());
    result.p99 = static_cast<std::uint32_t>(quantile(rates, 0.99));
    result.per_pod_hour = static_cast<double>(result.requests) / (options.pods * options.hours);
    for (double w : first_waits) {
        result.wait_first_total += w;
    }
    result.wait_first_p99 = quantile(first_waits, 0.99);
    result.wait_first_max = first_waits.empty() ? 0 : *std::max_element(first_waits.begin(), first_waits.end());
    if (!recoveries.empty()) {
        result.recovered_p50 = quantile(recoveries, 0.5);
        result.recovered_p99 = quantile(recoveries, 0.99);
        result.recovered_max = *std::max_element(recoveries.begin(), recoveries.end());
        const auto from = static_cast<std::size_t>(last_outage_end.count() / 1000);
        for (std::size_t s = from; s < std::min(from + 60, result.per_second.size()); ++s) {
            result.recovery_peak = std::max(result.recovery_peak, result.per_second[s]);
        }
    }
    return result;
}

std::vector<Scenario> scenarios(const Options& options)
{
    const Millis quarter{900'000};
    const Millis hour{3'600'000};
    // Centered in the run, or in the smoke run's shorter day.
    const Millis outage_start{static_cast<Millis::rep>(options.hours * 3'600'000 / 2)};
    cw::fleet::UpstreamModel keys15;
    keys15.lifetime = quarter;
    cw::fleet::UpstreamModel keys60 = keys15;
    keys60.lifetime = hour;
    cw::fleet::UpstreamModel outage = keys15;
    outage.outages.push_back({outage_start, outage_start + 10min});
    cw::fleet::UpstreamModel limited = keys15;
    // Twice the fleet's steady rate with 15-minute keys, a tenth of a Job's start.
    limited.rate_limit = std::max(1, options.pods / 100);
    limited.retry_after = 5s;
    return {
        {"job-start", "all pods start within 60 s (a large Job), 15-minute keys", 60s, keys15},
        {"steady-15m", "pods already running (starts spread over one lifetime), 15-minute keys", quarter, keys15},
        {"steady-1h", "pods already running, oidc with 1-hour keys", hour, keys60},
        {"outage", "steady 15-minute keys, the upstream answers 503 for 10 minutes mid-run", quarter, outage},
        {"rate-limit",
         "all pods start within 60 s; above " + std::to_string(*limited.rate_limit) +
             " requests/s the upstream answers 429 with Retry-After: 5",
         60s, limited},
    };
}

std::string fixed(double value, int decimals)
{
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    return buffer;
}

std::string table(const std::vector<Result>& results, const Options& options)
{
    std::ostringstream out;
    out << "fleet_sim: " << options.pods << " pods, " << fixed(options.hours, 1) << " simulated hours, refresh_jitter "
        << fixed(options.jitter, 2) << ", seed " << options.seed << ", upstream latency 50 ms\n\n";
    out << "| scenario | requests | refused | peak req/s | p99 req/s | exchanges per pod-hour "
           "| first key: pod-s, p99 s, max s | pod-s without keys: in outage | elsewhere "
           "| after recovery: all renewed p50/p99/max s, peak req/s |\n";
    out << "|---|---:|---:|---:|---:|---:|---|---:|---:|---|\n";
    for (const Result& r : results) {
        out << "| " << r.scenario.name << " | " << r.requests << " | " << r.refused << " | " << r.peak << " | " << r.p99
            << " | " << fixed(r.per_pod_hour, 2) << " | " << fixed(r.wait_first_total, 0) << ", "
            << fixed(r.wait_first_p99, 2) << ", " << fixed(r.wait_first_max, 2) << " | " << fixed(r.gap_outage, 0)
            << " | " << fixed(r.gap_other, 1) << " | ";
        if (r.recovered_p50) {
            out << fixed(*r.recovered_p50, 1) << " / " << fixed(*r.recovered_p99, 1) << " / "
                << fixed(*r.recovered_max, 1) << ", " << r.recovery_peak;
        } else {
            out << "-";
        }
        out << " |\n";
    }
    out << "\n";
    for (const Result& r : results) {
        out << "- " << r.scenario.name << ": " << r.scenario.description << "\n";
    }
    return out.str();
}

bool parse_number(std::string_view text, double& value)
{
    try {
        std::size_t used = 0;
        value = std::stod(std::string{text}, &used);
        return used == text.size();
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

int main(int argc, char** argv)
{
    // Parse the command line; --smoke is a small, short fleet for CI.
    Options options;
    const std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& flag = args[i];
        const bool has_value = i + 1 < args.size();
        double number = 0;
        if (flag == "--smoke") {
            options.pods = 500;
            options.hours = 2;
        } else if (has_value && flag == "--series") {
            options.series_dir = args[++i];
        } else if (has_value && flag == "--out") {
            options.out = args[++i];
        } else if (has_value && flag == "--only") {
            options.only = args[++i];
        } else if (has_value && parse_number(args[i + 1], number) && number > 0 &&
                   (flag == "--pods" || flag == "--hours" || flag == "--jitter" || flag == "--seed")) {
            ++i;
            if (flag == "--pods") {
                options.pods = static_cast<int>(number);
            } else if (flag == "--hours") {
                options.hours = number;
            } else if (flag == "--seed") {
                options.seed = static_cast<std::uint64_t>(number);
            } else {
                options.jitter = number;
            }
        } else {
            std::cerr << "usage: fleet_sim [--pods N] [--hours H] [--jitter F] [--seed S] [--only SCENARIO] "
                         "[--series DIR] [--out FILE] [--smoke]\n";
            return 2;
        }
    }

    // Quiet: the pods' own log lines would cost more than the simulation.
    cw::setup_logging(cw::LogFormat::text, spdlog::level::off);

    // One token file every pod reads.
    const auto token_file =
        std::filesystem::temp_directory_path() / ("cwcreds-fleet-sim-" + std::to_string(getpid()) + ".token");
    std::ofstream{token_file} << "fleet-sim-token";

    // Every scenario on its own clock and upstream, in parallel.
    std::vector<std::future<Result>> running;
    for (const Scenario& scenario : scenarios(options)) {
        if (options.only.empty() || options.only == scenario.name) {
            running.push_back(std::async(std::launch::async, run, scenario, options, token_file));
        }
    }
    std::vector<Result> results;
    for (auto& r : running) {
        results.push_back(r.get());
    }
    std::filesystem::remove(token_file);

    // The table, and the per-second series for the plot.
    const std::string text = table(results, options);
    std::cout << text;
    if (!options.out.empty()) {
        std::ofstream{options.out} << text;
    }
    if (!options.series_dir.empty()) {
        std::filesystem::create_directories(options.series_dir);
        for (const Result& r : results) {
            std::ofstream series{std::filesystem::path{options.series_dir} / (r.scenario.name + ".dat")};
            for (std::size_t s = 0; s < r.per_second.size(); ++s) {
                series << s << ' ' << r.per_second[s] << '\n';
            }
        }
    }
    return 0;
}
