#include <doctest/doctest.h>

#include <sstream>

#include <fstream>

#include "inject/manifest_injection.hpp"
#include "inject/yaml_json.hpp"

namespace {

using json = nlohmann::json;

cw::InjectOptions options()
{
    cw::InjectOptions o;
    o.image = "cwcreds:0.1.0";
    o.org_id = "acme";
    return o;
}

std::string injected(const std::string& text, bool patch = false)
{
    auto result = cw::inject_manifests(text, options(), patch);
    if (const auto* error = std::get_if<cw::ManifestError>(&result)) {
        FAIL(error->message);
    }
    return std::get<cw::ManifestOutput>(result).text;
}

std::vector<std::string> warnings_of(const std::string& text)
{
    auto result = cw::inject_manifests(text, options());
    REQUIRE(std::holds_alternative<cw::ManifestOutput>(result));
    return std::get<cw::ManifestOutput>(result).warnings;
}

std::string error_of(const std::string& text)
{
    auto result = cw::inject_manifests(text, options());
    REQUIRE(std::holds_alternative<cw::ManifestError>(result));
    return std::get<cw::ManifestError>(result).message;
}

std::vector<json> parsed(const std::string& text)
{
    return std::get<std::vector<json>>(cw::parse_yaml_documents(text));
}

constexpr const char* k_stream = R"(# a comment before the first document
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  enabled: "true"
  port: "8080"
  script: |
    echo one
    echo two
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        env: [{name: MODE, value: "on"}]
---
---
{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}},
  {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
   "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "j", "image": "busybox"}]}}}}
]}
)";

}  // namespace

TEST_SUITE("inject::manifest_injection")
{
    TEST_CASE("a multi-document stream: workloads injected, other objects unchanged, lists item by item")
    {
        const std::string out = injected(k_stream);
        const auto before = parsed(k_stream);
        const auto after = parsed(out);
        REQUIRE(after.size() == 3);  // the empty document is dropped
        CHECK(after[0] == before[0]);
        CHECK(after[1]["spec"]["template"]["spec"]["initContainers"][0]["name"] == "cwcreds");
        CHECK(after[1]["spec"]["template"]["spec"]["containers"][0]["env"][0] ==
              json{{"name", "MODE"}, {"value", "on"}});
        CHECK(after[2]["items"][0] == before[3]["items"][0]);
        CHECK(after[2]["items"][1]["spec"]["template"]["spec"]["initContainers"][0]["name"] == "cwcreds");
    }

    TEST_CASE("the output injected again is the same text: idempotent round trip")
    {
        const std::string once = injected(k_stream);
        CHECK(injected(once) == once);
    }

    TEST_CASE("patch mode prints one JSON line per object, empty for objects without a pod")
    {
        const std::string out = injected(k_stream, true);
        std::vector<json> lines;
        for (std::size_t start = 0; start < out.size();) {
            const auto end = out.find('\n', start);
            lines.push_back(json::parse(out.substr(start, end - start)));
            start = end + 1;
        }
        REQUIRE(lines.size() == 4);
        CHECK(lines[0]["patch"] == json::array());
        CHECK(lines[1]["document"] == 2);
        CHECK(lines[1]["name"] == "web");
        CHECK(lines[1]["patch"][0]["path"] == "/spec/template/spec/initContainers");
        CHECK(lines[3]["document"] == 4);
        CHECK(lines[3]["item"] == 2);
    }

    TEST_CASE("bad input names the document and the reason")
    {
        CHECK(error_of("apiVersion: v1\nkind: ConfigMap\n---\n- just\n- a list\n") ==
              "document 2: not a Kubernetes object (no apiVersion and kind)");
        CHECK(error_of("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n") ==
              "document 1 (Pod p): the pod has no containers");
        CHECK(error_of("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: q}\n"
                       "  spec: {containers: [{name: cwcreds, image: x}]}\n") ==
              "document 1, item 1 (Pod q): the pod already has a container named 'cwcreds' (added by the kustomize "
              "component or by hand?); rename it or drop the inject label");
        CHECK(error_of("kind: ConfigMap\napiVersion: v1\n---\nkey: [1, 2\n").starts_with("document 2: not YAML: "));
    }

    TEST_CASE("what the owner should know is said, naming the document: other credentials, envFrom, QoS given up")
    {
        const auto warnings = warnings_of(R"(apiVersion: v1
kind: Pod
metadata: {name: keys}
spec:
  containers:
  - name: app
    image: x
    env: [{name: AWS_ACCESS_KEY_ID, valueFrom: {secretKeyRef: {name: s3, key: id}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata:
      annotations: {cwcreds.coreweave.com/guaranteed: "false"}
    spec:
      containers:
      - name: web
        image: x
        envFrom: [{configMapRef: {name: web-env}}]
        resources: {limits: {cpu: "1", memory: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: quiet}
spec:
  containers: [{name: app, image: x}]
)");
        REQUIRE(warnings.size() == 3);
        CHECK(warnings[0] ==
              "document 1 (Pod keys): container 'app' sets AWS_ACCESS_KEY_ID: AWS SDKs use keys from the "
              "environment, not cwcreds");
        CHECK(warnings[1].starts_with("document 2 (Deployment web): every container's requests equal its limits"));
        CHECK(warnings[2] ==
              "document 2 (Deployment web): container 'web' takes variables from envFrom: AWS keys or a role there "
              "would win over cwcreds, and its AWS_CONTAINER_* values are overridden");
    }

    TEST_CASE("every pod template in any kind is injected, and every object left alone is named with the reason")
    {
        std::ifstream in{std::string{CWCREDS_SOURCE_DIR} + "/tests/fixtures/inject/kinds/operator-kinds.yaml"};
        std::stringstream text;
        text << in.rdbuf();
        auto result = cw::inject_manifests(text.str(), options());
        REQUIRE(std::holds_alternative<cw::ManifestOutput>(result));
        const auto& output = std::get<cw::ManifestOutput>(result);
        const auto objects = parsed(output.text);
        REQUIRE(objects.size() == 6);
        const auto sidecar_at = [&](std::size_t document, const std::string& pointer) {
            const json& pod = objects[document].at(json::json_pointer{pointer});
            return pod.at("spec").at("initContainers").at(0).at("name").get<std::string>();
        };
        CHECK(sidecar_at(0, "/spec/pytorchReplicaSpecs/Master/template") == "cwcreds");
        CHECK(sidecar_at(0, "/spec/pytorchReplicaSpecs/Worker/template") == "cwcreds");
        CHECK(sidecar_at(1, "/spec/replicatedJobs/0/template/spec/template") == "cwcreds");
        CHECK(sidecar_at(1, "/spec/replicatedJobs/1/template/spec/template") == "cwcreds");
        CHECK(sidecar_at(2, "/spec/leaderWorkerTemplate/leaderTemplate") == "cwcreds");
        CHECK(sidecar_at(2, "/spec/leaderWorkerTemplate/workerTemplate") == "cwcreds");
        CHECK(sidecar_at(3, "/spec/template") == "cwcreds");
        CHECK(sidecar_at(4, "/template") == "cwcreds");
        CHECK(output.unchanged == std::vector<std::string>{"document 6 (ConfigMap settings): holds no pod template"});
        // Injected again: nothing more, and each object says why.
        auto again = cw::inject_manifests(output.text, options());
        REQUIRE(std::holds_alternative<cw::ManifestOutput>(again));
        CHECK(std::get<cw::ManifestOutput>(again).text == output.text);
        CHECK(std::get<cw::ManifestOutput>(again).unchanged.at(0) ==
              "document 1 (PyTorchJob pytorch-simple): cwcreds is already injected");
    }

    TEST_CASE("a refusal inside an operator's kind names the pod template")
    {
        CHECK(error_of("apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: t}\nspec:\n"
                       "  pytorchReplicaSpecs:\n    Worker:\n      template:\n        spec:\n"
                       "          containers: [{name: w, image: x, ports: [{containerPort: 9911}]}]\n") ==
              "document 1 (PyTorchJob t): pod template /spec/pytorchReplicaSpecs/Worker/template: container 'w' "
              "declares port 9911, which the cwcreds sidecar's credentials listener uses; choose another with "
              "annotation cwcreds.coreweave.com/port");
    }
}
