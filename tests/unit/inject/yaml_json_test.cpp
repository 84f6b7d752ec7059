#include <doctest/doctest.h>

#include <limits>

#include "inject/yaml_json.hpp"

namespace {

using json = nlohmann::json;

std::vector<json> documents(const std::string& text)
{
    auto parsed = cw::parse_yaml_documents(text);
    if (const auto* error = std::get_if<cw::YamlError>(&parsed)) {
        FAIL("document " << error->document << ": " << error->reason);
    }
    return std::get<std::vector<json>>(parsed);
}

cw::YamlError error_of(const std::string& text, const cw::YamlLimits& limits = {})
{
    auto parsed = cw::parse_yaml_documents(text, limits);
    REQUIRE(std::holds_alternative<cw::YamlError>(parsed));
    return std::get<cw::YamlError>(parsed);
}

}  // namespace

TEST_SUITE("inject::yaml_json")
{
    TEST_CASE("scalars get the types the API server gives them")
    {
        const auto docs = documents(R"(
port: 8080
ratio: 0.5
big: 18446744073709551615
enabled: true
empty:
tilde: ~
quoted: "8080"
single: 'true'
yes_word: yes
version: 1.10.3
tagged: !!str 42
)");
        REQUIRE(docs.size() == 1);
        const json& d = docs[0];
        CHECK(d["port"] == 8080);
        CHECK(d["ratio"] == 0.5);
        CHECK(d["big"] == 18446744073709551615ULL);
        CHECK(d["enabled"] == true);
        CHECK(d["empty"].is_null());
        CHECK(d["tilde"].is_null());
        CHECK(d["quoted"] == "8080");
        CHECK(d["single"] == "true");
        CHECK(d["yes_word"] == true);  // YAML 1.1, as kubectl reads it
        CHECK(d["version"] == "1.10.3");
        CHECK(d["tagged"] == "42");
    }

    TEST_CASE("several documents, JSON among them, empty ones kept as null in place")
    {
        const auto docs = documents("a: 1\n---\n---\n{\"kind\": \"List\", \"items\": []}\n");
        REQUIRE(docs.size() == 3);
        CHECK(docs[1].is_null());
        CHECK(docs[2]["kind"] == "List");
    }

    TEST_CASE("writing quotes what would change type, and a round trip keeps every value")
    {
        const json original = {
            {"strings",
             {"true", "8080", "", "null", "~", "1e3", "-", "a: b", "#x", "yes", "  lead", "trail  ", "tab\there"}},
            {"script", "set -e\nwhile true; do\n  aws s3 ls\ndone\n"},
            {"no_final_newline", "line one\nline two"},
            {"blank_lines", "a\n\nb\n"},
            {"numbers", {0, -7, 3.25, 1e-9, 18446744073709551615ULL}},
            {"flags", {true, false, nullptr}},
            {"empty", {{"list", json::array()}, {"map", json::object()}}},
            {"8080", "numeric key"},
            {"unicode", "grüße ✓"},
            // Control characters: escaped in double quotes, never a literal
            // block, and a NUL does not cut the output short.
            {"controls", std::string{"a\0b\x01" "c\x7f\n", 7}},
            {"after_nul", "still here"},
        };
        const std::string text = cw::to_yaml(original);
        const auto back = documents(text);
        REQUIRE(back.size() == 1);
        CHECK_MESSAGE(back[0] == original, text);
        CHECK(text.find("|\n") != std::string::npos);  // the script stays a readable block
        // kubectl reads YAML 1.1, where these unquoted would not be strings.
        for (const char* word : {"yes", "on", "0.1.0", "1:30", "0x1F", "-1"}) {
            CHECK_MESSAGE(cw::to_yaml(json{{"v", word}}) == "v: \"" + std::string{word} + "\"\n", word);
        }
    }

    TEST_CASE("True and TRUE are booleans as written in manifests, and written back quoted when strings")
    {
        const auto docs = documents("hostNetwork: True\nprivileged: TRUE\nreadOnly: False\nquiet: FALSE\n");
        REQUIRE(docs.size() == 1);
        CHECK(docs[0]["hostNetwork"] == true);
        CHECK(docs[0]["privileged"] == true);
        CHECK(docs[0]["readOnly"] == false);
        CHECK(docs[0]["quiet"] == false);
        // As strings they must stay strings once written and read again.
        for (const char* word : {"True", "TRUE", "False", "FALSE"}) {
            CHECK_MESSAGE(cw::to_yaml(json{{"v", word}}) == "v: \"" + std::string{word} + "\"\n", word);
        }
    }

    TEST_CASE("the node budget is one for the whole stream, not one per document")
    {
        // Each document (a map, a list, 39 numbers: 41 nodes) is within the
        // budget of 100 alone; the third one takes the stream past it.
        std::string items;
        for (int i = 0; i < 39; ++i) {
            items += (i == 0 ? "" : ", ") + std::to_string(i);
        }
        std::string stream;
        for (int document = 0; document < 3; ++document) {
            stream += "items: [" + items + "]\n---\n";
        }
        const cw::YamlLimits limits{.max_nodes = 100};
        const auto error = error_of(stream, limits);
        CHECK(error.document == 3);
        CHECK(error.reason == "more than 100 nodes (aliases count each time used)");
    }

    TEST_CASE("bad YAML names the document it is in")
    {
        const auto error = error_of("a: 1\n---\nb: 2\n---\nc: [unclosed\n");
        CHECK(error.document == 3);
        CHECK(error.reason.starts_with("not YAML: "));
    }

    TEST_CASE("alias bombs and deep nesting are refused, not expanded")
    {
        std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
        char previous = 'a';
        for (char name = 'b'; name <= 'j'; ++name) {
            bomb += std::string{name} + ": &" + name + " [*" + previous + ", *" + previous + ", *" + previous + ", *" +
                    previous + ", *" + previous + ", *" + previous + ", *" + previous + ", *" + previous + ", *" +
                    previous + ", *" + previous + "]\n";
            previous = name;
        }
        const auto too_many = error_of(bomb);
        CHECK(too_many.document == 1);
        CHECK(too_many.reason == "more than 1000000 nodes (aliases count each time used)");

        const std::string deep = std::string(100, '[') + std::string(100, ']');
        CHECK(error_of(deep).reason == "nested deeper than 64 levels");
    }

    TEST_CASE("a long string aliased many times is refused by the text it would make, across documents")
    {
        // 100 KB used 1,000 times: 100 MB once expanded, from 104 KB of YAML.
        std::string bomb = "s: &s " + std::string(100'000, 'x') + "\nl: [";
        for (int i = 0; i < 1'000; ++i) {
            bomb += "*s, ";
        }
        bomb += "*s]\n";
        CHECK(error_of(bomb).reason == "more than 64 MiB of text (aliases count each time used)");

        // Each document alone is within a budget of 1 MiB; the third takes the stream past it.
        const std::string document = "a: " + std::string(400'000, 'y') + "\n---\n";
        const cw::YamlLimits limits{.max_text_bytes = 1U << 20U};
        const auto error = error_of(document + document + document, limits);
        CHECK(error.document == 3);
        CHECK(error.reason == "more than 1 MiB of text (aliases count each time used)");
    }

    TEST_CASE("a scalar of 50,000 digits is read without recursion: a string too long for a number")
    {
        const std::string digits(50'000, '7');
        const auto parsed = documents("big: " + digits + "\nfraction: 1." + digits + "\nnegative: -" + digits + "\n");
        REQUIRE(parsed.size() == 1);
        CHECK(parsed[0]["big"] == digits);
        CHECK(parsed[0]["fraction"].is_number_float());
        CHECK(parsed[0]["negative"] == "-" + digits);
        // Written back quoted, so it stays the string it was read as.
        CHECK(cw::to_yaml(parsed[0]).find("big: \"" + digits + "\"") != std::string::npos);
    }

    TEST_CASE("keys no Kubernetes object has, too long or holding controls, are refused: what is written reads back")
    {
        const std::string longest_label_key = std::string(253, 'd') + "/" + std::string(63, 'n');
        CHECK(documents(longest_label_key + ": 1\n").at(0) == json{{longest_label_key, 1}});
        const auto long_key = error_of("a: 1\n---\n" + std::string(1'001, 'k') + ": 1\n");
        CHECK(long_key.document == 2);
        CHECK(long_key.reason.find("a map key longer than 1000 bytes or holding a control character") !=
              std::string::npos);
        CHECK(error_of("\"a\\u0001b\": 1\n").reason.find("a map key longer than") != std::string::npos);
    }

    TEST_CASE("bytes that are not UTF-8 text, or raw control characters, are refused with their line")
    {
        // yaml-cpp keeps an invalid byte as read and writes it back as U+FFFD,
        // three bytes: a key of 700 such bytes came back over YAML's
        // 1,024-character limit for a plain key, and the output did not read.
        const auto invalid = error_of("a: 1\n---\nb: 1\n" + std::string(700, '\xa4') + ": 1\n");
        CHECK(invalid.document == 2);
        CHECK(invalid.reason == "not UTF-8 at line 4");
        CHECK(error_of("a: \"\xc0\xaf\"\n").reason == "not UTF-8 at line 1");      // overlong '/'
        CHECK(error_of("a: \"\xed\xa0\x80\"\n").reason == "not UTF-8 at line 1");  // a surrogate
        CHECK(error_of("a: \"\xe2\x82\"\n").reason == "not UTF-8 at line 1");      // cut short
        CHECK(error_of(std::string{"a: x\0y\n", 7}).reason.find("a raw control character") == 0);
        CHECK(error_of("a: \"x\x1by\"\n").reason.find("at line 1") != std::string::npos);
        // Escaped, the same characters are text; tabs, CRLF and any valid UTF-8 stay as they were.
        CHECK(documents("a: \"x\\x1by\"\n").at(0) == json{{"a", "x\x1by"}});
        CHECK(documents("a:\t\"caf\xc3\xa9 \xf0\x9f\x9a\x80\"\r\n").at(0) ==
              json{{"a", "caf\xc3\xa9 \xf0\x9f\x9a\x80"}});
    }

    TEST_CASE("number spellings: what is an integer, what a float, what stays a string")
    {
        const auto parsed = documents(
            "a: 12\nb: -3\nc: +4\nd: 1.\ne: .5\nf: 1e5\ng: -2.5E-3\nh: 1e\ni: .\nj: e5\nk: +\nl: 1.2.3\nm: 0x1F\n");
        REQUIRE(parsed.size() == 1);
        const json& v = parsed[0];
        CHECK(v["a"] == 12);
        CHECK(v["b"] == -3);
        CHECK(v["c"] == 4);
        CHECK(v["d"] == 1);  // a float that is an integer goes to the API server as one
        CHECK(v["e"] == 0.5);
        CHECK(v["f"] == 100000);
        CHECK(v["g"] == -0.0025);
        CHECK(v["m"] == 31);
        for (const char* key : {"h", "i", "j", "k", "l"}) {
            CAPTURE(key);
            CHECK(v[key].is_string());
        }
    }

    TEST_CASE("GitOps spellings read as kubectl reads them: octal modes, YAML 1.1 booleans, underscores")
    {
        // kubectl (sigs.k8s.io/yaml, go-yaml v2) reads 0644 as 420: writing
        // it back as 644 would be a different, invalid mode, and 0400 as 400
        // would be mode 0620, a group-writable Secret.
        const auto parsed = documents(
            "defaultMode: 0644\nmode: 0400\nnew_octal: 0o17\nhex: -0x10\nbinary: 0b101\nthousand: 1_000\n"
            "not_octal: 08\nbig: 0xFFFFFFFFFFFFFFFF\ntoo_big: 0x1FFFFFFFFFFFFFFFF\nmost_negative: "
            "-9223372036854775808\n"
            "tty: yes\nstdin: On\nprivileged: N\nhostIPC: off\ntime: 1:30\nzero: 0\nlabel: 0644a\n");
        REQUIRE(parsed.size() == 1);
        const json& v = parsed[0];
        CHECK(v["defaultMode"] == 420);
        CHECK(v["mode"] == 256);
        CHECK(v["new_octal"] == 15);
        CHECK(v["hex"] == -16);
        CHECK(v["binary"] == 5);
        CHECK(v["thousand"] == 1000);
        CHECK(v["not_octal"] == 8);
        CHECK(v["big"] == 18446744073709551615ULL);
        CHECK(v["too_big"] == "0x1FFFFFFFFFFFFFFFF");
        CHECK(v["most_negative"] == std::numeric_limits<std::int64_t>::min());
        CHECK(v["tty"] == true);
        CHECK(v["stdin"] == true);
        CHECK(v["privileged"] == false);
        CHECK(v["hostIPC"] == false);
        CHECK(v["time"] == "1:30");
        CHECK(v["zero"] == 0);
        CHECK(v["label"] == "0644a");
        // Written back, the values read the same: 420, not 0644 nor 644.
        const std::string written = cw::to_yaml(v);
        CHECK(written.find("defaultMode: 420\n") != std::string::npos);
        CHECK(documents(written).at(0) == v);
    }

    TEST_CASE("a document that begins with a comma is an error, not a parser that never returns")
    {
        // yaml-cpp 0.7 alone yields empty documents here until memory runs out.
        CHECK(error_of(",").reason == "not YAML: a document that begins with ',' at line 1");
        const auto second = error_of("a: 1\n---\n, b\n");
        CHECK(second.document == 2);
        CHECK(second.reason == "not YAML: a document that begins with ',' at line 3");
        // Document markers, explicit ends and comments still count right.
        const auto documents = std::get<std::vector<nlohmann::json>>(
            cw::parse_yaml_documents("# head\na: 1\n...\nb: 2\n---\nc: [1, 2]\n---\n"));
        CHECK(documents.size() == 4);
    }
}
