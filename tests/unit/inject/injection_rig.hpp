// What the pod mutation's tests share: the fixtures of tests/fixtures/inject,
// the options they inject with, and check_injected, the properties every
// injected pod must have whatever its shape.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "inject/pod_mutation.hpp"
#include "inject/workload.hpp"
#include "inject/yaml_json.hpp"

namespace inject_rig {


using json = nlohmann::json;

inline std::string read_source_file(const std::string& relative)
{
    std::ifstream in{std::string{CWCREDS_SOURCE_DIR} + "/" + relative, std::ios::binary};
    REQUIRE_MESSAGE(in.good(), relative);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

inline json load_yaml(const std::string& relative)
{
    auto parsed = cw::parse_yaml_documents(read_source_file(relative));
    REQUIRE(std::holds_alternative<std::vector<json>>(parsed));
    return std::get<std::vector<json>>(parsed).at(0);
}

inline json fixture(const std::string& name)
{
    return load_yaml("tests/fixtures/inject/" + name);
}

inline cw::InjectOptions options()
{
    cw::InjectOptions o;
    o.image = "registry.example.com/cwcreds:0.1.0";
    o.org_id = "default-org";
    return o;
}

inline cw::Injection injected(const json& object, const cw::InjectOptions& o = options())
{
    auto result = cw::inject_object(object, o);
    if (const auto* refusal = std::get_if<cw::Refusal>(&result)) {
        FAIL("refused: " << refusal->reason);
    }
    return std::get<cw::Injection>(result);
}

inline std::string refusal_of(const json& object, const cw::InjectOptions& o = options())
{
    auto result = cw::inject_object(object, o);
    if (const auto* refusal = std::get_if<cw::Refusal>(&result)) {
        return refusal->reason;
    }
    return "not refused";
}

inline const json& pod_of(const json& object)
{
    return object.at(json::json_pointer{*cw::pod_pointer(object)});
}

inline json& pod_of(json& object)
{
    return object.at(json::json_pointer{*cw::pod_pointer(object)});
}

inline const json* find_named(const json& list, const std::string& name)
{
    for (const auto& item : list) {
        if (item.value("name", "") == name) {
            return &item;
        }
    }
    return nullptr;
}

inline std::string env_value(const json& container, const std::string& name)
{
    if (!container.contains("env")) {
        return "<absent>";
    }
    const json* entry = find_named(container.at("env"), name);
    return entry != nullptr ? entry->value("value", "<valueFrom>") : "<absent>";
}

// What every injected pod must satisfy, whatever its shape: the sidecar
// first, reading a token volume with CoreWeave's audience; each container not
// skipped reaching the sidecar with the same token file the sidecar reads;
// the patch turning the input into the output; a second run changing nothing.
inline void check_injected(const json& before, const cw::Injection& result, const std::set<std::string>& skipped = {},
                    const cw::InjectOptions& used = options())
{
    CHECK(before.patch(result.patch) == result.pod);
    const json& pod = pod_of(result.pod);
    const json& spec = pod.at("spec");
    // First among the init containers, or right after a mesh's proxy.
    const json& inits = spec.at("initContainers");
    std::size_t expected_at = 0;
    for (std::size_t i = 0; i < inits.size(); ++i) {
        const std::string name = inits[i].at("name");
        if (name == "istio-proxy" || name == "linkerd-proxy") {
            expected_at = i + 1;
        }
    }
    REQUIRE(expected_at < inits.size());
    const json& sidecar = inits.at(expected_at);
    REQUIRE(sidecar.at("name") == "cwcreds");
    CHECK(sidecar.at("restartPolicy") == "Always");
    const std::string sidecar_token = env_value(sidecar, "CWCREDS_TOKEN_FILE");
    const std::string volume = sidecar.at("volumeMounts").at(0).at("name");
    const json* token_volume = find_named(spec.at("volumes"), volume);
    REQUIRE(token_volume != nullptr);
    const json& source = token_volume->at("projected").at("sources").at(0).at("serviceAccountToken");
    CHECK(source.at("audience") == "https://coreweave.com/iam");
    CHECK(sidecar_token == sidecar.at("volumeMounts").at(0).at("mountPath").get<std::string>() + "/" +
                               source.at("path").get<std::string>());

    std::vector<json> apps;
    for (const char* list : {"initContainers", "containers"}) {
        for (const json& c : spec.at(list)) {
            if (c.at("name") != "cwcreds") {
                apps.push_back(c);
            }
        }
    }
    // The meshes' own containers are never given cwcreds's env or mounts.
    std::set<std::string> not_given = skipped;
    not_given.insert({"istio-proxy", "istio-init", "istio-validation", "linkerd-proxy", "linkerd-init",
                      "linkerd-network-validator"});
    const json& old_spec = pod_of(before).at("spec");
    // A credentials endpoint the app set itself stays; only CoreWeave's
    // exchange URL (the direct setup) is pointed at the sidecar.
    const auto own_endpoint = [&old_spec](const std::string& name) -> std::string {
        for (const char* list : {"initContainers", "containers"}) {
            const json containers = old_spec.value(list, json::array());
            if (const json* old = find_named(containers, name)) {
                const std::string value = env_value(*old, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
                if (value != "<absent>" && !value.starts_with("https://api.coreweave.com/")) {
                    return value;
                }
            }
        }
        return "";
    };
    for (const json& c : apps) {
        const std::string name = c.at("name");
        if (not_given.contains(name)) {
            CHECK_MESSAGE(env_value(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI") == "<absent>", name);
            const json mounts = c.value("volumeMounts", json::array());
            CHECK_MESSAGE(find_named(mounts, volume) == nullptr, name);
            continue;
        }
        const std::string own = own_endpoint(name);
        CHECK_MESSAGE(env_value(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI") ==
                          (own.empty() ? "http://127.0.0.1:9911/v1/credentials" : own),
                      name);
        const json* mount = find_named(c.at("volumeMounts"), volume);
        REQUIRE_MESSAGE(mount != nullptr, name);
        CHECK_MESSAGE(env_value(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") ==
                          mount->at("mountPath").get<std::string>() + "/" + source.at("path").get<std::string>(),
                      name);
        CHECK_MESSAGE(env_value(c, "AWS_CONFIG_FILE") != "<absent>", name);
    }

    // Every env entry and mount the user had is still there, unchanged,
    // except a FULL_URI at CoreWeave's exchange endpoint.
    for (const char* list : {"initContainers", "containers"}) {
        for (const json& old_container : old_spec.value(list, json::array())) {
            const json* now = find_named(spec.at(list), old_container.at("name"));
            REQUIRE(now != nullptr);
            for (const json& entry : old_container.value("env", json::array())) {
                if (entry.at("name") == "AWS_CONTAINER_CREDENTIALS_FULL_URI" &&
                    entry.value("value", "").starts_with("https://api.coreweave.com/")) {
                    continue;
                }
                CHECK(*find_named(now->at("env"), entry.at("name")) == entry);
            }
            for (const json& mount : old_container.value("volumeMounts", json::array())) {
                CHECK(*find_named(now->at("volumeMounts"), mount.at("name")) == mount);
            }
        }
    }

    // Idempotent: injecting the result again changes nothing.
    const cw::Injection again = injected(result.pod, used);
    CHECK(again.patch == json::array());
    CHECK(again.pod == result.pod);
}


}  // namespace inject_rig
