#include "common/placeholder.hpp"

#include <algorithm>

namespace cw {

bool is_placeholder(std::string_view value)
{
    if ((value.size() >= 2 && value.front() == '<' && value.back() == '>') ||
        value.find("REPLACE-WITH-") != std::string_view::npos) {
        return true;
    }
    // <ORG-ID>, <REGISTRY>/cwcreds:<VERSION>: an upper-case word in angle brackets.
    for (std::size_t open = value.find('<'); open != std::string_view::npos; open = value.find('<', open + 1)) {
        const std::size_t close = value.find('>', open);
        if (close == std::string_view::npos) {
            return false;
        }
        const std::string_view word = value.substr(open + 1, close - open - 1);
        if (!word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
                return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
            })) {
            return true;
        }
    }
    return false;
}

}  // namespace cw
