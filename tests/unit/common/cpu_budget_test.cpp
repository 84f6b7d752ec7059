// The CPU budget read from fixture /proc and /sys trees.
#include <doctest/doctest.h>

#include <sched.h>

#include <thread>

#include "common/cpu_budget.hpp"
#include "temp_dir.hpp"

namespace {

// A fake /proc/self/cgroup and /sys/fs/cgroup under a temporary directory.
class CgroupTree {
public:
    void cgroup_file(const std::string& content) const { m_dir.write("cgroup", content); }

    void write(const std::string& relative, const std::string& content) const
    {
        const auto file = m_dir.path() / "sys" / relative;
        std::filesystem::create_directories(file.parent_path());
        m_dir.write((std::filesystem::path{"sys"} / relative).string(), content);
    }

    [[nodiscard]] cw::CpuBudget budget(unsigned affinity) const
    {
        cw::CpuBudgetSources sources;
        sources.proc_self_cgroup = m_dir.path() / "cgroup";
        sources.cgroup_root = m_dir.path() / "sys";
        std::filesystem::create_directories(sources.cgroup_root);
        sources.affinity_cpus = [affinity] { return affinity; };
        return cw::cpu_budget(sources);
    }

private:
    cw::test::TempDir m_dir;
};

// This thread's affinity mask, as the kernel reports it.
cpu_set_t own_mask()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    return set;
}

// The mask without its highest CPU: narrower than the machine, as a cpuset
// or taskset makes it. Needs a mask of two CPUs or more.
cpu_set_t all_but_last(cpu_set_t set)
{
    for (int cpu = CPU_SETSIZE - 1; cpu >= 0; --cpu) {
        if (CPU_ISSET(cpu, &set)) {
            CPU_CLR(cpu, &set);
            break;
        }
    }
    return set;
}

// The mask with only its lowest CPU.
cpu_set_t only_first(const cpu_set_t& set)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    return one;
}

// Runs `work` on a thread confined to `mask` (affinity is per thread, so the
// test's own thread keeps its CPUs) and returns what it returned.
template <typename Work>
auto on_cpus(const cpu_set_t& mask, Work work)
{
    decltype(work()) result{};
    bool confined = false;
    std::thread{[&] {
        confined = sched_setaffinity(0, sizeof mask, &mask) == 0;
        result = work();
    }}.join();
    REQUIRE(confined);
    return result;
}

}  // namespace

TEST_SUITE("common::cpu_budget")
{
    TEST_CASE("cpu.max values: a quota over a period, or unlimited")
    {
        CHECK(cw::parse_cpu_max("50000 100000\n") == doctest::Approx(0.5));
        CHECK(cw::parse_cpu_max("250000 100000") == doctest::Approx(2.5));
        CHECK_FALSE(cw::parse_cpu_max("max 100000\n"));
        CHECK_FALSE(cw::parse_cpu_max("garbage"));
        CHECK_FALSE(cw::parse_cpu_max("0 100000"));
        CHECK(cw::parse_cfs_quota("150000\n", "100000\n") == doctest::Approx(1.5));
        CHECK_FALSE(cw::parse_cfs_quota("-1", "100000"));
    }

    TEST_CASE("usable CPUs: the smaller of affinity and the quota rounded up, at least one")
    {
        CHECK(cw::usable_cpus(128, 0.5) == 1);
        CHECK(cw::usable_cpus(128, 1.5) == 2);
        CHECK(cw::usable_cpus(128, 2.0) == 2);
        CHECK(cw::usable_cpus(2, 8.0) == 2);
        CHECK(cw::usable_cpus(3, std::nullopt) == 3);
        CHECK(cw::usable_cpus(0, std::nullopt) == 1);
    }

    TEST_CASE("cgroup v2 in a cgroup namespace: the quota of the mount root")
    {
        CgroupTree tree;
        tree.cgroup_file("0::/\n");
        tree.write("cpu.max", "50000 100000\n");
        const auto budget = tree.budget(128);
        CHECK(budget.affinity_cpus == 128);
        REQUIRE(budget.quota_cpus);
        CHECK(*budget.quota_cpus == doctest::Approx(0.5));
        CHECK(budget.usable == 1);
    }

    TEST_CASE("cgroup v2: the smallest quota from the process's cgroup up to the root")
    {
        CgroupTree tree;
        tree.cgroup_file("0::/kubepods/pod1/sidecar\n");
        tree.write("kubepods/cpu.max", "max 100000\n");
        tree.write("kubepods/pod1/cpu.max", "300000 100000\n");
        tree.write("kubepods/pod1/sidecar/cpu.max", "max 100000\n");
        CHECK(tree.budget(64).usable == 3);
        CHECK(tree.budget(2).usable == 2);  // the affinity mask is smaller
    }

    TEST_CASE("cgroup v1: cfs quota and period of the cpu controller")
    {
        CgroupTree tree;
        tree.cgroup_file("4:memory:/x\n3:cpu,cpuacct:/kubepods/pod1\n0::/\n");
        tree.write("cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us", "150000\n");
        tree.write("cpu,cpuacct/kubepods/pod1/cpu.cfs_period_us", "100000\n");
        tree.write("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
        tree.write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        const auto budget = tree.budget(16);
        REQUIRE(budget.quota_cpus);
        CHECK(*budget.quota_cpus == doctest::Approx(1.5));
        CHECK(budget.usable == 2);
    }

    TEST_CASE("no cgroup files, or no quota anywhere: the affinity mask decides")
    {
        CgroupTree tree;
        CHECK(tree.budget(6).usable == 6);
        CHECK_FALSE(tree.budget(6).quota_cpus);
        tree.cgroup_file("0::/\n");
        tree.write("cpu.max", "max 100000\n");
        CHECK(tree.budget(6).usable == 6);
    }

    TEST_CASE("cgroup v1 without a cgroup namespace, the path not under the mount: the quota of the mount")
    {
        // The node's cgroup path, while the mount shows only the container's own cgroup.
        CgroupTree tree;
        tree.cgroup_file("4:memory:/kubepods/pod1/abc\n3:cpu,cpuacct:/kubepods/pod1/abc\n");
        tree.write("cpu,cpuacct/cpu.cfs_quota_us", "50000\n");
        tree.write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        const auto budget = tree.budget(8);
        REQUIRE(budget.quota_cpus);
        CHECK(*budget.quota_cpus == doctest::Approx(0.5));
        CHECK(budget.usable == 1);
    }

    TEST_CASE("cgroup v2, the path not under the mount: the quota of the mount")
    {
        CgroupTree tree;
        tree.cgroup_file("0::/kubepods/pod1/abc\n");
        tree.write("cpu.max", "200000 100000\n");
        const auto budget = tree.budget(8);
        REQUIRE(budget.quota_cpus);
        CHECK(*budget.quota_cpus == doctest::Approx(2.0));
        CHECK(budget.usable == 2);
    }

    TEST_CASE("this process: at least one CPU, never more than its affinity mask")
    {
        // A mask narrower than the machine when it has CPUs to spare, so that
        // counting the machine's CPUs instead of the mask's shows.
        cpu_set_t mask = own_mask();
        if (CPU_COUNT(&mask) >= 2) {
            mask = all_but_last(mask);
        }
        const auto [budget, seen] = on_cpus(mask, [] {
            const cpu_set_t confined = own_mask();
            return std::pair{cw::cpu_budget(), static_cast<unsigned>(CPU_COUNT(&confined))};
        });
        CHECK(budget.affinity_cpus == seen);
        CHECK(budget.usable >= 1);
        CHECK(budget.usable <= seen);
    }

    TEST_CASE("this process pinned to one CPU of several (a cpuset): one CPU to use")
    {
        const cpu_set_t mask = own_mask();
        if (CPU_COUNT(&mask) < 2) {
            MESSAGE("one CPU only: nothing to narrow");
            return;
        }
        const auto budget = on_cpus(only_first(mask), [] { return cw::cpu_budget(); });
        CHECK(budget.affinity_cpus == 1);
        CHECK(budget.usable == 1);
        CHECK(on_cpus(only_first(mask), [] { return cw::affinity_cpu_count(); }) == 1);
    }
}
