// `cwcreds inject`: read the manifests, mutate, write YAML to stdout.
#include "inject/inject_command.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>

#include "inject/manifest_injection.hpp"

namespace cw {

namespace {

// Far above any real manifest, low enough that a wrong pipe (a disk image,
// /dev/zero) ends with a message instead of eating memory.
constexpr std::size_t k_max_input = 64U << 20U;

std::optional<std::string> read_bounded(std::istream& in)
{
    std::string text;
    std::array<char, 65536> buffer{};
    while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0) {
        text.append(buffer.data(), static_cast<std::size_t>(in.gcount()));
        if (text.size() > k_max_input) {
            return std::nullopt;
        }
    }
    return text;
}

}  // namespace

int run_inject(const InjectSettings& settings)
{
    // 1. The input, from a file or stdin, bounded.
    std::optional<std::string> text;
    if (settings.input == "-") {
        text = read_bounded(std::cin);
    } else {
        errno = 0;
        std::ifstream file{settings.input, std::ios::binary};
        if (!file) {
            // filebuf::open is fopen underneath: errno says why.
            const int error = errno;
            std::cerr << "cwcreds inject: cannot read " << settings.input << ": "
                      << (error != 0 ? std::strerror(error) : "cannot be opened")
                      << (error == ENOENT ? " (-f takes a YAML or JSON file, or - for stdin)" : "") << "\n";
            return 2;
        }
        text = read_bounded(file);
    }
    if (!text) {
        std::cerr << "cwcreds inject: input larger than " << (k_max_input >> 20U) << " MiB\n";
        return 2;
    }

    // 2. Mutate every pod template (or take cwcreds out of each); the first
    //    problem stops it all.
    auto result = inject_manifests(*text, settings.mutation, settings.print_patch,
                                   settings.remove ? ManifestChange::remove : ManifestChange::inject);
    if (const auto* error = std::get_if<ManifestError>(&result)) {
        std::cerr << "cwcreds inject: " << error->message << "\n";
        return 2;
    }

    // 3. What the owner should know, then the YAML (or patches).
    const auto& output = std::get<ManifestOutput>(result);
    for (const auto& warning : output.warnings) {
        std::cerr << "cwcreds inject: warning: " << warning << "\n";
    }
    for (const auto& object : output.unchanged) {
        std::cerr << "cwcreds inject: unchanged: " << object << "\n";
    }
    std::cout << output.text << std::flush;
    return std::cout ? 0 : 1;
}

}  // namespace cw
