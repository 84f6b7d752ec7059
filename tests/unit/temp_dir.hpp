// A fresh directory per test, removed afterwards.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace cw::test {

class TempDir {
public:
    TempDir()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "cwcreds-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        m_path = pattern;
    }
    ~TempDir() { std::filesystem::remove_all(m_path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

    std::filesystem::path write(const std::string& name, const std::string& content) const
    {
        const auto file = m_path / name;
        std::ofstream{file, std::ios::binary} << content;
        return file;
    }

private:
    std::filesystem::path m_path;
};

// kubelet's atomic writer, as in shared/spec/kubelet-token-files.md:
// a timestamped directory, `..data` swapped by rename, a visible symlink.
class KubeletVolume {
public:
    explicit KubeletVolume(std::filesystem::path directory) : m_dir(std::move(directory))
    {
        std::filesystem::create_directories(m_dir);
    }

    [[nodiscard]] std::filesystem::path token_path() const { return m_dir / "oidc-token"; }

    void write(const std::string& token)
    {
        namespace fs = std::filesystem;
        const std::string name = "..2026_11_23_15_04_05." + std::to_string(++m_generation);
        fs::create_directory(m_dir / name);
        std::ofstream{m_dir / name / "oidc-token", std::ios::binary} << token;
        fs::create_directory_symlink(name, m_dir / "..data_tmp");
        fs::rename(m_dir / "..data_tmp", m_dir / "..data");
        if (!fs::is_symlink(token_path())) {
            fs::create_symlink("..data/oidc-token", token_path());
        }
        if (!m_previous.empty()) {
            fs::remove_all(m_dir / m_previous);
        }
        m_previous = name;
    }

private:
    std::filesystem::path m_dir;
    std::string m_previous;
    int m_generation = 0;
};

}  // namespace cw::test
