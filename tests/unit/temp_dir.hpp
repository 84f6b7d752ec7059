// A fresh directory per test, removed afterwards.
#pragma once

#include <array>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
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

    // write(), except that stat() on the new file says what it said on the
    // old one: same inode number, size and mtime. That is what a filesystem
    // shows when it hands the new file the number of the one deleted a
    // rotation earlier (ext4 does), the token keeps its length (JWTs of one
    // issuer do) and both writes fall within one tick of the filesystem's
    // clock. The inode is carried over by a hard link, rewritten in place
    // and its mtime put back; only the directory, as with kubelet, is new.
    void write_same_stat(const std::string& token)
    {
        namespace fs = std::filesystem;
        const fs::path old_file = m_dir / m_previous / "oidc-token";
        struct stat before {};
        if (::stat(old_file.c_str(), &before) != 0 ||
            static_cast<std::size_t>(before.st_size) != token.size()) {
            throw std::runtime_error("write_same_stat needs a previous token of the same length");
        }
        const std::string name = "..2026_11_23_15_04_05." + std::to_string(++m_generation);
        fs::create_directory(m_dir / name);
        fs::create_hard_link(old_file, m_dir / name / "oidc-token");
        std::ofstream{m_dir / name / "oidc-token", std::ios::binary | std::ios::in | std::ios::out} << token;
        const std::array<timespec, 2> times{before.st_atim, before.st_mtim};
        if (::utimensat(AT_FDCWD, (m_dir / name / "oidc-token").c_str(), times.data(), 0) != 0) {
            throw std::runtime_error("utimensat failed");
        }
        fs::create_directory_symlink(name, m_dir / "..data_tmp");
        fs::rename(m_dir / "..data_tmp", m_dir / "..data");
        fs::remove_all(m_dir / m_previous);
        m_previous = name;
    }

private:
    std::filesystem::path m_dir;
    std::string m_previous;
    int m_generation = 0;
};

}  // namespace cw::test
