#include <doctest/doctest.h>

#include "inject/pod_removal.hpp"
#include "injection_rig.hpp"

namespace {

using inject_rig::fixture;
using inject_rig::json;

cw::InjectOptions options(const std::string& image = "registry.example.com/cwcreds:0.1.0")
{
    cw::InjectOptions o = inject_rig::options();
    o.image = image;
    return o;
}

cw::Injection applied(const cw::InjectResult& result)
{
    if (const auto* refusal = std::get_if<cw::Refusal>(&result)) {
        FAIL("refused: " << refusal->reason);
    }
    return std::get<cw::Injection>(result);
}

const json& sidecar_of(const json& object)
{
    return object.at(json::json_pointer{*cw::pod_pointer(object)}).at("spec").at("initContainers").at(0);
}

}  // namespace

TEST_SUITE("inject::pod_removal")
{
    TEST_CASE("--remove gives back exactly what was injected into, for every shape")
    {
        for (const char* name : {"coreweave-webhook.yaml", "cronjob.yaml", "direct-setup.yaml", "gitops-yaml-1-1.yaml",
                                 "guaranteed-gpu-job.yaml", "job.yaml", "own-aws-config.yaml",
                                 "own-credentials-endpoint.yaml", "several-containers.yaml", "skipped-containers.yaml",
                                 "skipped-native-sidecar.yaml"}) {
            CAPTURE(name);
            const json before = fixture(name);
            const json injected = applied(cw::inject_object(before, options())).pod;
            REQUIRE(injected != before);
            const auto removed = applied(cw::remove_object(injected));
            CHECK(removed.pod == before);
            // The patch printed with --print-patch does the same.
            CHECK(injected.patch(removed.patch) == before);
        }
    }

    TEST_CASE("the direct setup's CoreWeave URL comes back to the container that had it, and only there")
    {
        json pod = fixture("direct-setup.yaml");
        pod["spec"]["containers"].push_back({{"name", "second"}, {"image", "x"}});
        const json injected = applied(cw::inject_object(pod, options())).pod;
        CHECK(injected.at("spec").at("containers").at(1).at("env").size() == 3);
        const json removed = applied(cw::remove_object(injected)).pod;
        CHECK(removed == pod);
        CHECK_FALSE(removed.at("spec").at("containers").at(1).contains("env"));
    }

    TEST_CASE("what cwcreds did not inject is left alone, and said so")
    {
        const json plain = fixture("job.yaml");
        const auto untouched = applied(cw::remove_object(plain));
        CHECK(untouched.pod == plain);
        CHECK(untouched.unchanged == "cwcreds is not injected");
        // A sidecar named cwcreds without the marker (the kustomize component's, or
        // one written by hand) is not inject's to take.
        json by_hand = fixture("refuse-container-name.yaml");
        CHECK(applied(cw::remove_object(by_hand)).pod == by_hand);
    }

    TEST_CASE("an injection by a cwcreds that mounted the token at /var/run/secrets/tokens comes out whole")
    {
        const json before = fixture("job.yaml");
        json old = applied(cw::inject_object(before, options())).pod;
        json& template_spec = old["spec"]["template"]["spec"];
        for (json* c : {&template_spec["initContainers"][0], &template_spec["containers"][0]}) {
            for (json& mount : (*c)["volumeMounts"]) {
                if (mount["name"] == "cwcreds-token") {
                    mount["mountPath"] = "/var/run/secrets/tokens";
                }
            }
            for (json& env : (*c)["env"]) {
                if (env["name"] == "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" || env["name"] == "CWCREDS_TOKEN_FILE") {
                    env["value"] = "/var/run/secrets/tokens/oidc-token";
                }
            }
        }
        CHECK(applied(cw::remove_object(old)).pod == before);
        // Injected again by this cwcreds: the old injection replaced, not refused.
        const json upgraded = applied(cw::inject_object(old, options())).pod;
        CHECK(upgraded == applied(cw::inject_object(before, options())).pod);
    }

    TEST_CASE("inject with other settings replaces the injection, and with the same ones it changes nothing")
    {
        const json before = fixture("several-containers.yaml");
        const json first = applied(cw::inject_object(before, options())).pod;
        const auto same = applied(cw::inject_object(first, options()));
        CHECK(same.patch.empty());
        CHECK(same.unchanged == "cwcreds is already injected");

        const auto upgraded = applied(cw::inject_object(first, options("registry.example.com/cwcreds:0.2.0")));
        CHECK(sidecar_of(upgraded.pod).at("image") == "registry.example.com/cwcreds:0.2.0");
        CHECK(upgraded.pod == applied(cw::inject_object(before, options("registry.example.com/cwcreds:0.2.0"))).pod);
        CHECK(first.patch(upgraded.patch) == upgraded.pod);

        // A new port moves every container's FULL_URI with the sidecar.
        json moved = first;
        moved["spec"]["template"]["metadata"]["annotations"]["cwcreds.coreweave.com/port"] = "19911";
        const json reported = applied(cw::inject_object(moved, options())).pod;
        for (const json& c : reported.at("spec").at("template").at("spec").at("containers")) {
            for (const json& env : c.at("env")) {
                if (env.at("name") == "AWS_CONTAINER_CREDENTIALS_FULL_URI") {
                    CHECK(env.at("value") == "http://127.0.0.1:19911/v1/credentials");
                }
            }
        }
    }
}
