// Fuzz target: cw::review_admission, what the webhook does with a POST body.
//
// The body comes from the network (the API server, or anyone who reaches the
// Service). Invariants: no crash, no exception; the answer is 200 or 400;
// its body is JSON; a 200 is an AdmissionReview for the request's uid, and a
// patch, when there is one, applies to the object and leaves a pod that a
// second review does not patch again (reinvocation converges).
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "webhook/admission.hpp"

namespace {

using json = nlohmann::json;

std::string base64_decode(const std::string& text)
{
    std::string out(text.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    FUZZ_CHECK(n >= 0);
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '\0') {
        out.pop_back();
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    cw::InjectOptions options;
    options.image = "cwcreds:0.1.0";
    options.org_id = "fuzz-org";
    const std::string_view body = cw_fuzz::as_text(data, size);
    const auto answer = cw::review_admission(body, options);
    FUZZ_CHECK(answer.http_status == 200 || answer.http_status == 400);
    const json reply = json::parse(answer.body, nullptr, false);
    FUZZ_CHECK(!reply.is_discarded());
    if (answer.http_status == 400) {
        FUZZ_CHECK(answer.result == cw::AdmissionResult::bad_request);
        FUZZ_CHECK(reply["error"].is_string());
        return 0;
    }
    const json request = json::parse(body)["request"];
    FUZZ_CHECK(reply["response"]["uid"] == request["uid"]);
    if (answer.result != cw::AdmissionResult::mutated) {
        FUZZ_CHECK(!reply["response"].contains("patch"));
        return 0;
    }
    const json patch = json::parse(base64_decode(reply["response"]["patch"].get<std::string>()));
    const json mutated = request["object"].patch(patch);
    json again = json::parse(body);
    again["request"]["object"] = mutated;
    const auto second = cw::review_admission(again.dump(), options);
    FUZZ_CHECK(second.result == cw::AdmissionResult::unchanged);
    return 0;
}
