// Reading a pod nobody vouched for: an AdmissionReview or a YAML file may put
// anything anywhere, so every read says what it expects and refuses
// (throws Refused, turned into a Refusal by pod_patch) when it is not there.
#include "inject/mutation_parts.hpp"

#include <algorithm>

namespace cw::mutation {

[[noreturn]] void refuse(std::string reason)
{
    throw Refused{std::move(reason)};
}

std::string pointer_token(std::string_view key)
{
    std::string out;
    for (const char c : key) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

const json* member(const json& object, std::string_view key)
{
    if (!object.is_object()) {
        return nullptr;
    }
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

const json& list_at(const json& object, std::string_view key, const std::string& where)
{
    static const json empty = json::array();
    const json* value = member(object, key);
    if (value == nullptr || value->is_null()) {
        return empty;
    }
    if (!value->is_array() ||
        !std::all_of(value->begin(), value->end(), [](const json& item) { return item.is_object(); })) {
        refuse(where + "." + std::string{key} + " is not a list of objects");
    }
    return *value;
}

std::string string_at(const json& object, std::string_view key)
{
    const json* value = member(object, key);
    return value != nullptr && value->is_string() ? value->get<std::string>() : std::string{};
}

std::string trimmed(std::string_view text)
{
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    return std::string{text.substr(first, text.find_last_not_of(" \t") - first + 1)};
}

std::string without_trailing_slash(std::string path)
{
    while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
    }
    return path;
}

}  // namespace cw::mutation
