#include "webhook/admission.hpp"

#include <openssl/evp.h>

#include <spdlog/fmt/fmt.h>

namespace cw {

namespace {

using json = nlohmann::json;

// Pods are a few levels deep; copying or printing a JSON value recurses, so
// a body of a million '[' must be refused while parsing, not later.
constexpr int k_max_depth = 64;

struct TooDeep {};

std::string base64(std::string_view data)
{
    std::string out(4 * ((data.size() + 2) / 3), '\0');
    const int written =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

AdmissionAnswer bad_request(std::string reason)
{
    AdmissionAnswer answer;
    answer.http_status = 400;
    answer.body = json{{"error", reason}}.dump();
    answer.result = AdmissionResult::bad_request;
    answer.reason = std::move(reason);
    return answer;
}

const json* member(const json& object, std::string_view key)
{
    if (!object.is_object()) {
        return nullptr;
    }
    const auto it = object.find(key);
    return it != object.end() ? &*it : nullptr;
}

std::string string_in(const json& object, std::string_view key)
{
    if (!object.is_object()) {
        return {};
    }
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

std::string_view admission_result_name(AdmissionResult result)
{
    switch (result) {
        case AdmissionResult::mutated:
            return "mutated";
        case AdmissionResult::unchanged:
            return "unchanged";
        case AdmissionResult::denied:
            return "denied";
        case AdmissionResult::bad_request:
            return "bad_request";
    }
    return "bad_request";
}

AdmissionAnswer review_admission(std::string_view body, const InjectOptions& options)
{
    // 1. A well-formed AdmissionReview v1 with a request uid.
    json review;
    try {
        review = json::parse(body, [](int depth, json::parse_event_t, json&) {
            if (depth > k_max_depth) {
                throw TooDeep{};
            }
            return true;
        });
    } catch (const TooDeep&) {
        return bad_request("AdmissionReview nested deeper than " + std::to_string(k_max_depth) + " levels");
    } catch (const json::exception&) {
        return bad_request("body is not JSON");
    }
    if (!review.is_object() || string_in(review, "apiVersion") != "admission.k8s.io/v1" ||
        string_in(review, "kind") != "AdmissionReview") {
        return bad_request("not an admission.k8s.io/v1 AdmissionReview");
    }
    const json* request = member(review, "request");
    if (request != nullptr && !request->is_object()) {
        request = nullptr;
    }
    const std::string uid = request != nullptr ? string_in(*request, "uid") : std::string{};
    if (uid.empty()) {
        return bad_request("AdmissionReview has no request.uid");
    }

    AdmissionAnswer answer;
    json response = {{"uid", uid}, {"allowed", true}};
    const auto reply = [&review, &response, &answer]() {
        answer.body =
            json{{"apiVersion", review["apiVersion"]}, {"kind", "AdmissionReview"}, {"response", response}}.dump();
        return answer;
    };

    // 2. Only Pod CREATE is ours; everything else passes as it came.
    const json* kind = member(*request, "kind");
    const bool pod = kind != nullptr && string_in(*kind, "group").empty() && string_in(*kind, "kind") == "Pod";
    if (!pod || string_in(*request, "operation") != "CREATE" || !string_in(*request, "subResource").empty()) {
        return reply();
    }
    const json* object = member(*request, "object");
    if (object == nullptr || !object->is_object()) {
        return bad_request("Pod CREATE without request.object");
    }
    static const json none = json::object();
    const json* found = member(*object, "metadata");
    const json& metadata = found != nullptr ? *found : none;
    const std::string name =
        string_in(metadata, "name").empty() ? string_in(metadata, "generateName") + "*" : string_in(metadata, "name");
    answer.pod = string_in(*request, "namespace") + "/" + name;
    const json* labels = member(metadata, "labels");
    if (labels == nullptr || string_in(*labels, k_inject_label) != "true") {
        return reply();
    }

    // 3. The mutation, or a denial naming why there is none.
    auto result = pod_patch(*object, options);
    if (const auto* refusal = std::get_if<Refusal>(&result)) {
        response["allowed"] = false;
        response["status"] = {{"code", 403}, {"message", "cwcreds cannot inject this pod: " + refusal->reason}};
        answer.result = AdmissionResult::denied;
        answer.reason = refusal->reason;
        return reply();
    }
    const auto& [patch, warnings] = std::get<Patch>(result);
    // kubectl prints these to whoever created the pod (or its workload).
    std::string warning_field;
    if (!warnings.empty()) {
        json prefixed = json::array();
        for (const auto& warning : warnings) {
            prefixed.push_back("cwcreds: " + warning);
        }
        response["warnings"] = prefixed;
        warning_field = R"("warnings":)" + prefixed.dump() + ",";
    }
    if (patch.empty()) {
        return reply();
    }
    // Base64 needs no escaping in JSON: written as it is rather than passed
    // through the serializer byte by byte, a sixth of the work of a review.
    answer.body = fmt::format(
        R"({{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":{},"allowed":true,{})"
        R"("patchType":"JSONPatch","patch":"{}"}}}})",
        json(uid).dump(), warning_field, base64(patch.dump()));
    answer.result = AdmissionResult::mutated;
    return answer;
}

}  // namespace cw
