// The CPU budget read from fixture /proc and /sys trees.
#include <doctest/doctest.h>

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

    TEST_CASE("this process: at least one CPU, never more than its affinity mask")
    {
        const auto budget = cw::cpu_budget();
        CHECK(budget.usable >= 1);
        CHECK(budget.usable <= cw::affinity_cpu_count());
    }
}
