// One AdmissionReview in, the HTTP answer out: a pure function, so the
// server is only transport and every decision is unit-tested.
//
// Decisions, in order:
//   - not JSON, not an admission.k8s.io/v1 AdmissionReview, no request.uid,
//     nested absurdly deep: HTTP 400 with a message (the API server logs it);
//   - not a Pod CREATE (other kinds, subresources, UPDATE...): allowed, unchanged;
//   - a Pod without the label cwcreds/inject: "true": allowed, unchanged
//     (the objectSelector should already have kept it away);
//   - a labelled Pod the mutation refuses: denied, with the reason, so no
//     pod that asked for credentials runs without them;
//   - otherwise allowed with the JSON Patch, base64 as the API requires, and
//     the mutation's warnings as AdmissionReview warnings (kubectl prints them).
#pragma once

#include <string>
#include <string_view>

#include "inject/pod_mutation.hpp"

namespace cw {

enum class AdmissionResult { mutated, unchanged, denied, bad_request };

struct AdmissionAnswer {
    int http_status = 200;
    std::string body;  // JSON: an AdmissionReview, or {"error": "..."} with 400
    AdmissionResult result = AdmissionResult::unchanged;
    std::string reason;  // for the log line: why denied or bad; never pod content
    std::string pod;     // namespace/name (or generateName) for the log line
};

AdmissionAnswer review_admission(std::string_view body, const InjectOptions& options);

std::string_view admission_result_name(AdmissionResult result);

}  // namespace cw
