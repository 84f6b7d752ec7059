// Reading small files whole, with a size cap, failures as values.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <variant>

namespace cw {

struct FileError {
    std::string reason;  // "not found", "permission denied", "larger than 65536 bytes", ...
};

using FileContent = std::variant<std::string, FileError>;

// Follows symlinks (kubelet's visible token file is one). Never throws.
FileContent read_small_file(const std::filesystem::path& path, std::size_t max_bytes);

// Drops trailing spaces, tabs, CR and LF: kubelet writes none, but humans and
// `echo > file` do. Leading characters are kept: they would be the token's own.
std::string trim_trailing_whitespace(std::string text);

}  // namespace cw
