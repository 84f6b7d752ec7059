// yaml-cpp builds a node tree (aliases share nodes); the conversion walks it
// with a depth and a node budget, since a tree of shared nodes can stand for
// exponentially many nodes once expanded.
#include "inject/yaml_json.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

namespace cw {

namespace {

using json = nlohmann::json;

struct TooBig {
    std::string reason;
};

bool is_null_word(std::string_view text)
{
    return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

// kubectl reads YAML through sigs.k8s.io/yaml, that is go-yaml v2, which
// resolves plain scalars by YAML 1.1: `tty: yes` is true and
// `defaultMode: 0644` is 420. Reading them as kubectl does is what keeps a
// GitOps file's meaning through `inject`.
std::optional<bool> bool_word(std::string_view text)
{
    static constexpr std::array<std::string_view, 11> k_true = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                                                "True", "TRUE", "on",  "On",  "ON"};
    static constexpr std::array<std::string_view, 11> k_false = {"n",     "N",     "no",  "No",  "NO", "false",
                                                                 "False", "FALSE", "off", "Off", "OFF"};
    if (std::find(k_true.begin(), k_true.end(), text) != k_true.end()) {
        return true;
    }
    if (std::find(k_false.begin(), k_false.end(), text) != k_false.end()) {
        return false;
    }
    return std::nullopt;
}

// The spellings below are scanned by hand, once over the text: std::regex
// recurses per character and a scalar of 50,000 digits overflows the stack.

// The digits of `text` from `at`; returns where they end.
std::size_t skip_digits(std::string_view text, std::size_t at)
{
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
        ++at;
    }
    return at;
}

std::size_t skip_sign(std::string_view text)
{
    return !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
}

// An integer as Go's strconv.ParseInt(text, 0, 64) reads it once go-yaml
// has dropped the underscores: an optional sign, then 0x/0o/0b and their
// digits, or a leading 0 and octal digits, or decimal digits. Beyond 64 bits
// (go-yaml then tries uint64): nullopt, and the text stays as written.
std::optional<json> integer_value(std::string_view text)
{
    const std::size_t sign = skip_sign(text);
    const bool negative = sign == 1 && text[0] == '-';
    std::string_view digits = text.substr(sign);
    int base = 10;
    if (digits.size() > 1 && digits[0] == '0') {
        const char marker = digits[1];
        if (marker == 'x' || marker == 'X') {
            base = 16;
        } else if (marker == 'o' || marker == 'O') {
            base = 8;
        } else if (marker == 'b' || marker == 'B') {
            base = 2;
        } else {
            base = 8;
            digits.remove_prefix(1);
        }
        if (base != 8 || marker == 'o' || marker == 'O') {
            digits.remove_prefix(2);
        }
    }
    if (digits.empty()) {
        return std::nullopt;
    }
    std::uint64_t magnitude = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    if (error != std::errc{} || end != digits.data() + digits.size()) {
        return std::nullopt;
    }
    constexpr auto k_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (!negative) {
        return magnitude <= k_max ? json(static_cast<std::int64_t>(magnitude)) : json(magnitude);
    }
    if (magnitude > k_max + 1) {
        return std::nullopt;
    }
    return magnitude == k_max + 1 ? json(std::numeric_limits<std::int64_t>::min())
                                  : json(-static_cast<std::int64_t>(magnitude));
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float_spelling(std::string_view text)
{
    std::size_t at = skip_sign(text);
    const std::size_t integer_end = skip_digits(text, at);
    if (integer_end > at) {
        at = integer_end;
        if (at < text.size() && text[at] == '.') {
            at = skip_digits(text, at + 1);
        }
    } else {
        if (at >= text.size() || text[at] != '.') {
            return false;
        }
        const std::size_t fraction_end = skip_digits(text, at + 1);
        if (fraction_end == at + 1) {
            return false;
        }
        at = fraction_end;
    }
    if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
        const std::size_t exponent = at + 1 + skip_sign(text.substr(at + 1));
        const std::size_t exponent_end = skip_digits(text, exponent);
        if (exponent_end == exponent) {
            return false;
        }
        at = exponent_end;
    }
    return at == text.size();
}

// A plain scalar as kubectl reads it (go-yaml v2's resolve): null, a
// YAML 1.1 boolean, an integer in any of Go's bases, a float (written as an
// integer when it is one, as Go's JSON encoder writes it: `08` is not octal,
// so it is the float 8, and kubectl sends 8), else the text.
json plain_scalar(const std::string& text)
{
    if (is_null_word(text)) {
        return nullptr;
    }
    if (const auto flag = bool_word(text)) {
        return *flag;
    }
    const char first = text.front();
    if ((first < '0' || first > '9') && first != '-' && first != '+' && first != '.') {
        return text;
    }
    std::string plain = text;
    plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());
    if (auto integer = integer_value(plain)) {
        return *integer;
    }
    if (is_float_spelling(plain)) {
        try {
            const double value = std::stod(plain);
            constexpr double k_exact = 9007199254740992.0;  // 2^53: every integer below is a double
            if (std::isfinite(value) && value == std::trunc(value) && std::fabs(value) < k_exact) {
                return static_cast<std::int64_t>(value);
            }
            if (std::isfinite(value)) {
                return value;
            }
        } catch (const std::exception&) {
        }
    }
    return text;
}

// YAML reads a key written in the plain form (`key: value`) only up to 1024
// characters, and yaml-cpp, past that, writes every later key of the map in
// the explicit form (`? key`), so what `inject` writes would not read back the
// same. No Kubernetes key comes near (a label or annotation key is at most
// 317 characters of letters, digits and -._/), so keys that could need it,
// long or holding control characters (which writing escapes to 4 characters
// each), are refused on reading.
constexpr std::size_t k_max_key_bytes = 1000;

// A C0 control character or DEL: what YAML writes only escaped.
bool has_control(std::string_view text)
{
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

bool is_plausible_key(std::string_view key)
{
    return key.size() <= k_max_key_bytes && !has_control(key);
}

class Converter {
public:
    explicit Converter(const YamlLimits& limits) : m_limits(limits) {}

    json convert(const YAML::Node& node, std::size_t depth)
    {
        if (++m_nodes > m_limits.max_nodes) {
            throw TooBig{"more than " + std::to_string(m_limits.max_nodes) + " nodes (aliases count each time used)"};
        }
        if (depth > m_limits.max_depth) {
            throw TooBig{"nested deeper than " + std::to_string(m_limits.max_depth) + " levels"};
        }
        switch (node.Type()) {
            case YAML::NodeType::Null:
            case YAML::NodeType::Undefined:
                return nullptr;
            case YAML::NodeType::Scalar: {
                count_text(node.Scalar().size());
                const std::string& tag = node.Tag();
                if (tag == "!" || tag == "tag:yaml.org,2002:str") {
                    return node.Scalar();
                }
                return plain_scalar(node.Scalar());
            }
            case YAML::NodeType::Sequence: {
                json out = json::array();
                for (const auto& item : node) {
                    out.push_back(convert(item, depth + 1));
                }
                return out;
            }
            case YAML::NodeType::Map: {
                json out = json::object();
                for (const auto& entry : node) {
                    if (!entry.first.IsScalar()) {
                        throw YAML::ParserException(entry.first.Mark(), "a map key is not a scalar");
                    }
                    if (!is_plausible_key(entry.first.Scalar())) {
                        throw YAML::ParserException(entry.first.Mark(),
                                                    "a map key longer than " + std::to_string(k_max_key_bytes) +
                                                        " bytes or holding a control character (no Kubernetes "
                                                        "key does)");
                    }
                    count_text(entry.first.Scalar().size());
                    out[entry.first.Scalar()] = convert(entry.second, depth + 1);
                }
                return out;
            }
        }
        return nullptr;
    }

private:
    void count_text(std::size_t bytes)
    {
        m_text_bytes += bytes;
        if (m_text_bytes > m_limits.max_text_bytes) {
            throw TooBig{"more than " + std::to_string(m_limits.max_text_bytes >> 20U) +
                         " MiB of text (aliases count each time used)"};
        }
    }

    const YamlLimits& m_limits;
    std::size_t m_nodes = 0;
    std::size_t m_text_bytes = 0;
};

// Which document a line belongs to: separators seen before it. An
// approximation (a `---` inside a block scalar counts too), used only to
// point a parse error at its document.
std::size_t document_of_line(std::string_view text, std::size_t line)
{
    std::size_t document = 1;
    bool content_seen = false;
    std::size_t current = 0;
    for (std::size_t start = 0; start < text.size() && current < line; ++current) {
        const auto end = std::min(text.find('\n', start), text.size());
        const std::string_view row = text.substr(start, end - start);
        if (row.substr(0, 3) == "---") {
            if (content_seen) {
                ++document;
            }
            content_seen = row.find_first_not_of(" \t", 3) != std::string_view::npos && row[3] != '#';
        } else if (!row.empty() && row.find_first_not_of(" \t") != std::string_view::npos && row[0] != '#') {
            content_seen = true;
        }
        start = end + 1;
    }
    return document;
}

// Quoted when the text would read back as anything but this string, by our
// reader or by kubectl's YAML 1.1 one (yes/no/on/off are booleans there,
// 0x1F, 0o17, 1_000 and 1:30 numbers): quoting too often costs nothing.
bool needs_quotes(const std::string& text)
{
    static constexpr std::array<std::string_view, 18> k_yaml11_words = {
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "=", "<<"};
    return !plain_scalar(text).is_string() || has_control(text) ||
           (!text.empty() && std::string_view{"0123456789+-."}.find(text.front()) != std::string_view::npos) ||
           std::find(k_yaml11_words.begin(), k_yaml11_words.end(), text) != k_yaml11_words.end();
}

void emit(YAML::Emitter& out, const json& value)
{
    switch (value.type()) {
        case json::value_t::object:
            out << YAML::BeginMap;
            for (const auto& [key, item] : value.items()) {
                out << YAML::Key;
                if (needs_quotes(key)) {
                    out << YAML::DoubleQuoted;
                }
                out << key << YAML::Value;
                emit(out, item);
            }
            out << YAML::EndMap;
            break;
        case json::value_t::array:
            out << YAML::BeginSeq;
            for (const auto& item : value) {
                emit(out, item);
            }
            out << YAML::EndSeq;
            break;
        case json::value_t::string: {
            const auto& text = value.get_ref<const std::string&>();
            // Scripts in `args` stay readable as literal blocks when yaml-cpp can
            // write them back exactly; anything else is double-quoted.
            const bool other_control = std::any_of(text.begin(), text.end(), [](char c) {
                return (static_cast<unsigned char>(c) < 0x20 && c != '\n') || c == 0x7f;
            });
            const bool literal = text.find('\n') != std::string::npos && !other_control && text.front() != ' ' &&
                                 text.front() != '\n' && text.back() == '\n' && text.find(" \n") == std::string::npos &&
                                 text.find("\n\n") == std::string::npos;
            if (literal) {
                out << YAML::Literal << text;
            } else {
                if (needs_quotes(text)) {
                    out << YAML::DoubleQuoted;
                }
                out << text;
            }
            break;
        }
        case json::value_t::boolean:
            out << value.get<bool>();
            break;
        case json::value_t::number_integer:
            out << value.get<std::int64_t>();
            break;
        case json::value_t::number_unsigned:
            out << value.get<std::uint64_t>();
            break;
        case json::value_t::number_float:
            out << YAML::Precision(std::numeric_limits<double>::max_digits10) << value.get<double>();
            break;
        default:
            out << YAML::Null;
            break;
    }
}

// yaml-cpp 0.7 (Debian 12's) never gets past a document that begins with
// ',': the parser reports an empty document there for ever, and LoadAll
// collects them until memory runs out. A first pass over the parser's events
// stops at more documents than the text can hold: one, plus one per line
// that begins with a `---` or `...` marker.
class DocumentCounter final : public YAML::EventHandler {
public:
    std::size_t line = 0;  // where the last document began, 0-based

    void OnDocumentStart(const YAML::Mark& mark) override { line = static_cast<std::size_t>(mark.line); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

// Length of the UTF-8 sequence at `at`, or 0 when it is not one (overlong
// forms, surrogates and code points past U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view text, std::size_t at)
{
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(at);
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        low = lead == 0xE0 ? 0xA0 : 0x80;
        high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        low = lead == 0xF0 ? 0x90 : 0x80;
        high = lead == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (at + length > text.size() || byte(at + 1) < low || byte(at + 1) > high) {
        return 0;
    }
    for (std::size_t i = at + 2; i < at + length; ++i) {
        if (byte(i) < 0x80 || byte(i) > 0xBF) {
            return 0;
        }
    }
    return length;
}

// YAML streams are UTF-8 text without C0 control characters but tab and line
// breaks. yaml-cpp reads other bytes as they come and writes them back
// changed (an invalid byte as U+FFFD, three bytes), so a stream holding them
// would not read back as what was read; refused, with where.
std::optional<YamlError> unreadable_text(std::string_view text)
{
    for (std::size_t at = 0; at < text.size();) {
        const auto c = static_cast<unsigned char>(text[at]);
        const std::size_t length = utf8_sequence_length(text, at);
        // DEL is left alone: yaml-cpp writes it raw and reads it back the same.
        const bool control = c < 0x20 && c != '\t' && c != '\n' && c != '\r';
        if (length == 0 || control) {
            const auto line = static_cast<std::size_t>(
                std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
            const char* what =
                length == 0 ? "not UTF-8" : "a raw control character (write it escaped, in double quotes)";
            return YamlError{document_of_line(text, line), std::string{what} + " at line " + std::to_string(line + 1)};
        }
        at += length;
    }
    return std::nullopt;
}

std::optional<YamlError> parser_stalls(std::string_view text)
{
    std::size_t most = 1;
    for (std::size_t start = 0; start < text.size();) {
        const auto end = std::min(text.find('\n', start), text.size());
        const auto row = text.substr(start, end - start);
        if (row.substr(0, 3) == "---" || row.substr(0, 3) == "...") {
            ++most;
        }
        start = end + 1;
    }
    std::istringstream input{std::string{text}};
    YAML::Parser parser{input};
    DocumentCounter counter;
    for (std::size_t documents = 0; parser.HandleNextDocument(counter);) {
        if (++documents > most) {
            return YamlError{document_of_line(text, counter.line),
                             "not YAML: a document that begins with ',' at line " + std::to_string(counter.line + 1)};
        }
    }
    return std::nullopt;
}

}  // namespace

std::variant<std::vector<nlohmann::json>, YamlError> parse_yaml_documents(std::string_view text,
                                                                          const YamlLimits& limits)
{
    std::vector<YAML::Node> nodes;
    if (auto unreadable = unreadable_text(text)) {
        return *unreadable;
    }
    try {
        if (auto stalled = parser_stalls(text)) {
            return *stalled;
        }
        nodes = YAML::LoadAll(std::string{text});
    } catch (const YAML::Exception& error) {
        const auto line = error.mark.is_null() ? 0 : static_cast<std::size_t>(error.mark.line);
        return YamlError{
            error.mark.is_null() ? 0 : document_of_line(text, line),
            "not YAML: " + error.msg + (error.mark.is_null() ? "" : " at line " + std::to_string(line + 1))};
    }
    std::vector<nlohmann::json> documents;
    Converter converter{limits};
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        try {
            documents.push_back(converter.convert(nodes[i], 0));
        } catch (const TooBig& too_big) {
            return YamlError{i + 1, too_big.reason};
        } catch (const YAML::Exception& error) {
            return YamlError{i + 1, "not YAML: " + error.msg};
        }
    }
    return documents;
}

std::string to_yaml(const nlohmann::json& document)
{
    YAML::Emitter out;
    out.SetIndent(2);
    out.SetSeqFormat(YAML::Block);
    out.SetMapFormat(YAML::Block);
    emit(out, document);
    return std::string{out.c_str(), out.size()} + "\n";  // c_str() would stop at a NUL
}

}  // namespace cw
