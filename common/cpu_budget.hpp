// How many CPUs this process may really use.
//
// std::thread::hardware_concurrency() counts the machine's CPUs. A sidecar
// with `limits.cpu: 500m` on a 128-core node, or pinned by a static CPU
// manager, gets far fewer: threads sized from the machine then time-slice
// what the pod was given and add latency. This reads the two things that
// confine a process: its affinity mask (cpusets, taskset) and its cgroup's
// CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`),
// the smallest quota on the way from its cgroup up to the root. The files are
// found through paths the caller may replace, so tests read fixtures.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

namespace cw {

struct CpuBudget {
    unsigned affinity_cpus = 1;        // CPUs in the affinity mask
    std::optional<double> quota_cpus;  // CPU time the cgroups allow, in CPUs; none: unlimited
    unsigned usable = 1;               // the smaller of the two (a quota rounded up), at least 1
};

// The CPUs in this process's affinity mask (sched_getaffinity), at least 1.
unsigned affinity_cpu_count();

struct CpuBudgetSources {
    std::filesystem::path proc_self_cgroup = "/proc/self/cgroup";
    std::filesystem::path cgroup_root = "/sys/fs/cgroup";
    std::function<unsigned()> affinity_cpus = affinity_cpu_count;
};

CpuBudget cpu_budget(const CpuBudgetSources& sources = {});

// "50000 100000" -> 0.5; "max 100000" -> none; unparsable -> none.
std::optional<double> parse_cpu_max(std::string_view text);

// cgroup v1: quota "-1" means unlimited.
std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period);

// The CPUs a budget allows: min(affinity, ceil(quota)), at least 1.
unsigned usable_cpus(unsigned affinity_cpus, std::optional<double> quota_cpus);

}  // namespace cw
