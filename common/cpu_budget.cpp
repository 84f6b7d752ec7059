#include "common/cpu_budget.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "common/file_reader.hpp"

namespace cw {

namespace {

constexpr std::size_t k_max_file = 64 * 1024;

std::optional<long long> parse_integer(std::string_view text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.remove_suffix(1);
    }
    long long value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::optional<std::string> read_text(const std::filesystem::path& path)
{
    auto content = read_small_file(path, k_max_file);
    if (auto* text = std::get_if<std::string>(&content)) {
        return std::move(*text);
    }
    return std::nullopt;
}

std::optional<double> smaller(std::optional<double> a, std::optional<double> b)
{
    if (!a) {
        return b;
    }
    if (!b) {
        return a;
    }
    return std::min(*a, *b);
}

// The cgroup directories from `relative` (as /proc/self/cgroup names it) up
// to `mount`. When the process sits in a cgroup namespace, or v1 mounts only
// its own cgroup, the path may not exist under the mount: the mount itself
// is then the process's cgroup.
std::vector<std::filesystem::path> cgroup_chain(const std::filesystem::path& mount, std::string_view relative)
{
    const auto below = std::filesystem::path{relative}.relative_path();
    const std::filesystem::path leaf = below.empty() ? mount : mount / below;
    std::error_code error;
    if (!std::filesystem::is_directory(leaf, error)) {
        return {mount};
    }
    std::vector<std::filesystem::path> chain;
    for (std::filesystem::path dir = leaf;; dir = dir.parent_path()) {
        chain.push_back(dir);
        if (dir == mount || !dir.has_relative_path() || dir.parent_path() == dir) {
            break;
        }
    }
    return chain;
}

// Quota along v2's unified hierarchy.
std::optional<double> quota_v2(const std::filesystem::path& root, std::string_view relative)
{
    std::optional<double> quota;
    for (const auto& dir : cgroup_chain(root, relative)) {
        if (const auto text = read_text(dir / "cpu.max")) {
            quota = smaller(quota, parse_cpu_max(*text));
        }
    }
    return quota;
}

// Quota along v1's cpu controller, mounted as cpu,cpuacct or cpu.
std::optional<double> quota_v1(const std::filesystem::path& root, std::string_view relative)
{
    for (const char* mount_name : {"cpu,cpuacct", "cpu"}) {
        const auto mount = root / mount_name;
        std::error_code error;
        if (!std::filesystem::is_directory(mount, error)) {
            continue;
        }
        std::optional<double> quota;
        for (const auto& dir : cgroup_chain(mount, relative)) {
            const auto period = read_text(dir / "cpu.cfs_period_us");
            const auto limit = read_text(dir / "cpu.cfs_quota_us");
            if (period && limit) {
                quota = smaller(quota, parse_cfs_quota(*limit, *period));
            }
        }
        return quota;
    }
    return std::nullopt;
}

}  // namespace

unsigned affinity_cpu_count()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        return 1;
    }
    return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

std::optional<double> parse_cpu_max(std::string_view text)
{
    const auto space = text.find(' ');
    if (space == std::string_view::npos) {
        return std::nullopt;
    }
    const auto quota = parse_integer(text.substr(0, space));  // "max" fails here: unlimited
    const auto period = parse_integer(text.substr(space + 1));
    if (!quota || !period || *quota <= 0 || *period <= 0) {
        return std::nullopt;
    }
    return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period)
{
    const auto q = parse_integer(quota);
    const auto p = parse_integer(period);
    if (!q || !p || *q <= 0 || *p <= 0) {
        return std::nullopt;
    }
    return static_cast<double>(*q) / static_cast<double>(*p);
}

unsigned usable_cpus(unsigned affinity_cpus, std::optional<double> quota_cpus)
{
    unsigned usable = std::max(1U, affinity_cpus);
    if (quota_cpus) {
        // Half a CPU still needs one thread; 1.5 CPUs can keep two busy.
        const double rounded = std::ceil(*quota_cpus);
        usable = std::min(usable, static_cast<unsigned>(std::max(1.0, rounded)));
    }
    return usable;
}

CpuBudget cpu_budget(const CpuBudgetSources& sources)
{
    CpuBudget budget;
    budget.affinity_cpus = std::max(1U, sources.affinity_cpus());
    if (const auto cgroups = read_text(sources.proc_self_cgroup)) {
        std::istringstream lines{*cgroups};
        std::optional<double> quota;
        for (std::string line; std::getline(lines, line);) {
            // "hierarchy-id:controller-list:path"; v2 is "0::path".
            const auto first = line.find(':');
            const auto second = line.find(':', first + 1);
            if (first == std::string::npos || second == std::string::npos) {
                continue;
            }
            const std::string_view controllers = std::string_view{line}.substr(first + 1, second - first - 1);
            const std::string_view path = std::string_view{line}.substr(second + 1);
            if (line.compare(0, first, "0") == 0 && controllers.empty()) {
                quota = smaller(quota, quota_v2(sources.cgroup_root, path));
                quota = smaller(quota, quota_v2(sources.cgroup_root / "unified", path));
            } else if (("," + std::string{controllers} + ",").find(",cpu,") != std::string::npos) {
                quota = smaller(quota, quota_v1(sources.cgroup_root, path));
            }
        }
        budget.quota_cpus = quota;
    }
    budget.usable = usable_cpus(budget.affinity_cpus, budget.quota_cpus);
    return budget;
}

}  // namespace cw
