#include <doctest/doctest.h>

#include <openssl/evp.h>

#include "webhook/admission.hpp"

namespace {

using json = nlohmann::json;

cw::InjectOptions options()
{
    cw::InjectOptions o;
    o.image = "cwcreds:0.1.0";
    o.org_id = "acme";
    return o;
}

json pod(bool labelled = true)
{
    json p = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"generateName", "web-"}, {"labels", {{"app", "web"}}}}},
              {"spec", {{"containers", {{{"name", "web"}, {"image", "nginx"}}}}}}};
    if (labelled) {
        p["metadata"]["labels"]["cwcreds/inject"] = "true";
    }
    return p;
}

json review(const json& object, const std::string& operation = "CREATE",
            const json& kind = {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}})
{
    return {{"apiVersion", "admission.k8s.io/v1"},
            {"kind", "AdmissionReview"},
            {"request",
             {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
              {"kind", kind},
              {"operation", operation},
              {"namespace", "team-a"},
              {"object", object}}}};
}

json decode_patch(const std::string& text)
{
    std::string out(text.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    REQUIRE(n > 0);
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '\0') {
        out.pop_back();  // padding decodes to zero bytes
    }
    return json::parse(out);
}

}  // namespace

TEST_SUITE("webhook::admission")
{
    TEST_CASE("a labelled Pod CREATE is allowed with a base64 JSON Patch that injects cwcreds")
    {
        const auto answer = cw::review_admission(review(pod()).dump(), options());
        CHECK(answer.http_status == 200);
        CHECK(answer.result == cw::AdmissionResult::mutated);
        CHECK(answer.pod == "team-a/web-*");
        const json body = json::parse(answer.body);
        CHECK(body["apiVersion"] == "admission.k8s.io/v1");
        CHECK(body["kind"] == "AdmissionReview");
        CHECK(body["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002");
        CHECK(body["response"]["allowed"] == true);
        CHECK(body["response"]["patchType"] == "JSONPatch");
        const json patched = pod().patch(decode_patch(body["response"]["patch"]));
        CHECK(patched["spec"]["initContainers"][0]["name"] == "cwcreds");
    }

    TEST_CASE("unlabelled pods, other kinds and other operations pass unchanged")
    {
        for (const json& r :
             {review(pod(false)), review(pod(), "UPDATE"),
              review(pod(), "CREATE", {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}})}) {
            const auto answer = cw::review_admission(r.dump(), options());
            CHECK(answer.result == cw::AdmissionResult::unchanged);
            const json body = json::parse(answer.body);
            CHECK(body["response"]["allowed"] == true);
            CHECK_FALSE(body["response"].contains("patch"));
        }
        json label_false = pod(false);
        label_false["metadata"]["labels"]["cwcreds/inject"] = "false";
        CHECK(cw::review_admission(review(label_false).dump(), options()).result == cw::AdmissionResult::unchanged);
    }

    TEST_CASE("an injected pod reviewed again (reinvocation) is allowed without a patch")
    {
        const json first = json::parse(cw::review_admission(review(pod()).dump(), options()).body);
        const json injected = pod().patch(decode_patch(first["response"]["patch"]));
        const auto again = cw::review_admission(review(injected).dump(), options());
        CHECK(again.result == cw::AdmissionResult::unchanged);
        CHECK_FALSE(json::parse(again.body)["response"].contains("patch"));
    }

    TEST_CASE("a labelled pod that cannot be served is denied, naming the cause")
    {
        json p = pod();
        p["spec"]["containers"].push_back({{"name", "cwcreds"}, {"image", "old"}});
        const auto answer = cw::review_admission(review(p).dump(), options());
        CHECK(answer.result == cw::AdmissionResult::denied);
        // A denial is an answered review: any other status is a webhook
        // failure to the API server, and the user would read "failed calling
        // webhook" instead of the reason.
        CHECK(answer.http_status == 200);
        const json body = json::parse(answer.body);
        CHECK(body["response"]["allowed"] == false);
        CHECK(body["response"]["status"]["code"] == 403);
        CHECK(body["response"]["status"]["message"] ==
              "cwcreds cannot inject this pod: the pod already has a container named 'cwcreds' (added by the "
              "kustomize component or by hand?); rename it or drop the inject label");
    }

    TEST_CASE("malformed reviews are a 400 that says what is wrong")
    {
        const auto reason = [](const std::string& body) {
            const auto answer = cw::review_admission(body, options());
            CHECK(answer.http_status == 400);
            CHECK(answer.result == cw::AdmissionResult::bad_request);
            return json::parse(answer.body)["error"].get<std::string>();
        };
        CHECK(reason("") == "body is not JSON");
        CHECK(reason("{\"apiVersion\": ") == "body is not JSON");
        CHECK(reason("[]") == "not an admission.k8s.io/v1 AdmissionReview");
        CHECK(reason(R"({"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"})") ==
              "not an admission.k8s.io/v1 AdmissionReview");
        CHECK(reason(R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}})") ==
              "AdmissionReview has no request.uid");
        json no_object = review(pod());
        no_object["request"].erase("object");
        CHECK(reason(no_object.dump()) == "Pod CREATE without request.object");
        // A million levels would blow the stack when copied or printed later.
        CHECK(reason(std::string(1'000'000, '[') + std::string(1'000'000, ']')) ==
              "AdmissionReview nested deeper than 64 levels");
    }

    TEST_CASE("the mutation's warnings reach kubectl as AdmissionReview warnings")
    {
        json web_identity = pod();
        web_identity["spec"]["containers"][0]["env"] = {{{"name", "AWS_ROLE_ARN"}, {"value", "arn:aws:iam::1:role/r"}}};
        const auto answer = cw::review_admission(review(web_identity).dump(), options());
        REQUIRE(answer.result == cw::AdmissionResult::mutated);
        const json response = json::parse(answer.body).at("response");
        CHECK(response.at("warnings") ==
              json{"cwcreds: container 'web' sets AWS_ROLE_ARN: AWS SDKs try web identity before cwcreds"});
        CHECK_FALSE(decode_patch(response.at("patch")).empty());
        CHECK_FALSE(json::parse(cw::review_admission(review(pod()).dump(), options()).body)
                        .at("response")
                        .contains("warnings"));
    }
}
