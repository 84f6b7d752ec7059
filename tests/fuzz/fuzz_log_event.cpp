// Fuzz target: cw::format_event, the one place every log line is made.
//
// Log values come from whoever can reach the sidecar or the webhook (a pod
// name in an AdmissionReview, a header, an upstream's body excerpt, a path).
// The input is split at its first NUL into a value and a second value.
// Invariants: in both formats the event is exactly one line of valid UTF-8
// holding no control character (C0, DEL or C1: no line break, no escape
// sequence can reach a terminal); the JSON line is one object that gives the
// values back (when they are valid UTF-8); the text line keeps its fields.
#include <nlohmann/json.hpp>

#include "common/logging.hpp"
#include "fuzz_support.hpp"

namespace {

bool valid_utf8(std::string_view text)
{
    try {
        (void)nlohmann::json(text).dump();
        return true;
    } catch (const nlohmann::json::exception&) {
        return false;
    }
}

// One line, valid UTF-8, no C0, DEL or C1 control.
bool safe_line(const std::string& line)
{
    for (const char c : line) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7F) {
            return false;
        }
    }
    for (std::size_t i = 0; i + 1 < line.size(); ++i) {
        if (static_cast<unsigned char>(line[i]) == 0xC2 && static_cast<unsigned char>(line[i + 1]) <= 0x9F) {
            return false;
        }
    }
    return valid_utf8(line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    const std::string_view input = cw_fuzz::as_text(data, size);
    const auto split = input.find('\0');
    const std::string first{input.substr(0, split)};
    const std::string second{split == std::string_view::npos ? std::string_view{} : input.substr(split + 1)};

    const std::string text = cw::format_event(cw::LogFormat::text, "admission refused",
                                              {{"pod", first}, {"reason", second}, {"attempt", 3}});
    FUZZ_CHECK(safe_line(text));
    FUZZ_CHECK(text.starts_with("admission refused pod="));
    FUZZ_CHECK(text.ends_with(" attempt=3"));
    FUZZ_CHECK(text.find(" reason=") != std::string::npos);

    const std::string json = cw::format_event(cw::LogFormat::json, "admission refused",
                                              {{"pod", first}, {"reason", second}, {"attempt", 3}});
    FUZZ_CHECK(safe_line(json));
    const auto object = nlohmann::json::parse("{" + json + "}", nullptr, false);
    FUZZ_CHECK(object.is_object());
    FUZZ_CHECK(object["attempt"] == 3);
    if (valid_utf8(first)) {
        FUZZ_CHECK(object["pod"] == first);
    }
    if (valid_utf8(second)) {
        FUZZ_CHECK(object["reason"] == second);
    }
    return 0;
}
