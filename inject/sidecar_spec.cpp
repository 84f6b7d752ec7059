// The sidecar container cwcreds adds and the volumes it brings: the
// projected token with CoreWeave's audience and the AWS config.
#include "inject/mutation_parts.hpp"

#include <algorithm>
#include <cstdint>

namespace cw::mutation {

namespace {

constexpr std::string_view k_aws_config =
    R"(# AWS SDK / CLI configuration for CoreWeave AI Object Storage, mounted from a
# ConfigMap and named by AWS_CONFIG_FILE (CoreWeave's "Configure S3 endpoints
# for Pods"). Inside CKS the LOTA endpoint is the fast one; from outside use
# https://cwobject.com. CoreWeave needs virtual-hosted addressing.
[default]
region = US-EAST-04A
endpoint_url = http://cwlota.com
s3 =
    addressing_style = virtual
)";

}  // namespace

json env_var(std::string_view name, std::string_view value)
{
    return {{"name", name}, {"value", value}};
}

json sidecar_container(const Settings& settings, std::string_view token_volume, std::string_view token_path)
{
    json env =
        json::array({env_var("CWCREDS_ORG_ID", settings.org_id), env_var("CWCREDS_EXCHANGE", settings.exchange)});
    if (settings.exchange == "oidc") {
        env.push_back(env_var("CWCREDS_DURATION", settings.duration));
    }
    const std::string probe_port = std::to_string(settings.probe_port);
    if (settings.port != k_default_port) {
        env.push_back(env_var("CWCREDS_LISTEN", "127.0.0.1:" + std::to_string(settings.port)));
    }
    // On the node's network the kubelet probes the node's address, so the
    // probes name loopback and the probe listener opens no port on the
    // node's interfaces. Declared ports there are host ports: the scheduler
    // then keeps two pods wanting the same ones off one node.
    env.push_back(env_var("CWCREDS_PROBE_LISTEN", (settings.host_network ? "127.0.0.1:" : "0.0.0.0:") + probe_port));
    env.push_back(env_var("CWCREDS_TOKEN_FILE", std::string{k_token_dir} + "/" + std::string{token_path}));
    if (!settings.startup_gate.empty()) {
        env.push_back(env_var("CWCREDS_STARTUP_GATE", settings.startup_gate));
    }
    // The kubelet must not restart the sidecar before its gate opens: that
    // would start the wait again, for ever. Half a minute past the gate, at
    // least the minute an exchange may take with its retries.
    const auto startup_failures = std::max<std::int64_t>(60, settings.startup_gate_seconds.count() + 30);
    const auto probe = [&settings](std::string_view path) {
        json get = {{"path", path}, {"port", "cwcreds-probes"}};
        if (settings.host_network) {
            get["host"] = "127.0.0.1";
        }
        return get;
    };
    json ports = json::array();
    if (settings.host_network) {
        ports.push_back({{"name", "cwcreds"}, {"containerPort", settings.port}, {"protocol", "TCP"}});
    }
    ports.push_back({{"name", "cwcreds-probes"}, {"containerPort", settings.probe_port}, {"protocol", "TCP"}});
    const Resources& r = settings.resources;
    // The same container as manifests/components/cwcreds/sidecar.yaml, whose
    // comments say why each value is what it is (a unit test compares them).
    json container = {
        {"name", k_sidecar},
        {"image", settings.image},
        {"imagePullPolicy", "IfNotPresent"},
        {"restartPolicy", "Always"},
        {"args", {"serve"}},
        {"env", env},
        {"ports", ports},
        {"startupProbe",
         {{"httpGet", probe("/startupz")},
          {"periodSeconds", 1},
          {"timeoutSeconds", 1},
          {"failureThreshold", startup_failures}}},
        {"livenessProbe",
         {{"httpGet", probe("/healthz")}, {"periodSeconds", 10}, {"timeoutSeconds", 5}, {"failureThreshold", 6}}},
        {"resources",
         {{"requests", {{"cpu", r.cpu_request}, {"memory", r.memory_request}}},
          {"limits", {{"cpu", r.cpu_limit}, {"memory", r.memory_limit}}}}},
        {"securityContext",
         {{"runAsNonRoot", true},
          {"runAsUser", 65532},
          {"runAsGroup", 65532},
          {"readOnlyRootFilesystem", true},
          {"allowPrivilegeEscalation", false},
          {"capabilities", {{"drop", {"ALL"}}}},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
        {"volumeMounts", {{{"name", token_volume}, {"mountPath", k_token_dir}, {"readOnly", true}}}},
    };
    if (settings.no_resources) {
        container.erase("resources");
    }
    return container;
}

json token_volume_spec()
{
    return {{"name", k_token_volume},
            {"projected",
             {{"sources",
               {{{"serviceAccountToken",
                  {{"path", k_token_path}, {"audience", k_audience}, {"expirationSeconds", 3600}}}}}}}}};
}

json config_volume_spec()
{
    const std::string field = "metadata.annotations['" + std::string{annotation::aws_config} + "']";
    return {{"name", k_config_volume},
            {"downwardAPI", {{"items", {{{"path", "config"}, {"fieldRef", {{"fieldPath", field}}}}}}}}};
}

}  // namespace cw::mutation

namespace cw {

std::string_view default_aws_config()
{
    return mutation::k_aws_config;
}

}  // namespace cw
