#include <doctest/doctest.h>

#include "injection_rig.hpp"

using namespace inject_rig;

TEST_SUITE("inject::pod_mutation")
{
    TEST_CASE("a Deployment with several containers and its own init container keeps all it had, sidecar first")
    {
        const json before = fixture("several-containers.yaml");
        const auto result = injected(before);
        check_injected(before, result);
        const json& spec = pod_of(result.pod).at("spec");
        CHECK(spec.at("initContainers").at(1).at("name") == "fetch-weights");
        CHECK(spec.at("volumes").size() == 4);
        CHECK(pod_of(result.pod).at("metadata").at("annotations").at("prometheus.io/scrape") == "true");
        CHECK(env_value(spec.at("initContainers").at(0), "CWCREDS_ORG_ID") == "default-org");
        CHECK(spec.at("initContainers").at(0).at("image") == "registry.example.com/cwcreds:0.1.0");
        // The patch only adds: the sidecar in front, then what each container lacks.
        for (const json& op : result.patch) {
            CHECK(op.at("op") == "add");
        }
        CHECK(result.patch.at(0).at("path") == "/spec/template/spec/initContainers/0");
    }

    TEST_CASE("CoreWeave's direct setup: the URI moves to the sidecar, the token volume and org stay")
    {
        const json before = fixture("direct-setup.yaml");
        cw::InjectOptions no_org = options();
        no_org.org_id.clear();
        const auto result = injected(before, no_org);
        check_injected(before, result, {}, no_org);
        const json& spec = result.pod.at("spec");
        const json& app = spec.at("containers").at(0);
        CHECK(env_value(app, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") == "/var/run/secrets/tokens/oidc-token");
        CHECK(env_value(app, "AWS_DEFAULT_REGION") == "US-EAST-04A");
        CHECK(env_value(spec.at("initContainers").at(0), "CWCREDS_ORG_ID") == "acme-org");
        CHECK(find_named(spec.at("volumes"), "cwcreds-token") == nullptr);
        CHECK(spec.at("initContainers").at(0).at("volumeMounts").at(0).at("name") == "oidc-token");
        // Exactly one value of the app's own env changed, by a replace.
        int replaces = 0;
        for (const json& op : result.patch) {
            if (op.at("op") == "replace") {
                ++replaces;
                CHECK(op.at("path") == "/spec/containers/0/env/1/value");
            }
        }
        CHECK(replaces == 1);
    }

    TEST_CASE("CoreWeave's pod-identity-webhook output: its token, at its path, is what the sidecar reads")
    {
        const json before = fixture("coreweave-webhook.yaml");
        const auto result = injected(before);
        check_injected(before, result);
        const json& sidecar = result.pod.at("spec").at("initContainers").at(0);
        // The sidecar mounts that volume where only cwcreds mounts; the app keeps its own path.
        CHECK(env_value(sidecar, "CWCREDS_TOKEN_FILE") ==
              "/var/run/secrets/cwcreds.coreweave.com/serviceaccount/eks-pod-identity-token");
        CHECK(sidecar.at("volumeMounts").at(0).at("name") == "eks-pod-identity-token");
        CHECK(env_value(result.pod.at("spec").at("containers").at(0), "AWS_STS_REGIONAL_ENDPOINTS") == "regional");
    }

    TEST_CASE("a Job gets the native sidecar and its annotations choose the oidc exchange")
    {
        const json before = fixture("job.yaml");
        const auto result = injected(before);
        check_injected(before, result);
        const json& sidecar = pod_of(result.pod).at("spec").at("initContainers").at(0);
        CHECK(env_value(sidecar, "CWCREDS_EXCHANGE") == "oidc");
        CHECK(env_value(sidecar, "CWCREDS_DURATION") == "4h");
    }

    TEST_CASE("a duration annotation without the oidc exchange is said to have no effect")
    {
        json pod = fixture("job.yaml");
        pod_of(pod)["metadata"]["annotations"].erase("cwcreds.coreweave.com/exchange");
        const auto container_mode = injected(pod);
        const json& sidecar = pod_of(container_mode.pod).at("spec").at("initContainers").at(0);
        CHECK(env_value(sidecar, "CWCREDS_EXCHANGE") == "container-credentials");
        REQUIRE(container_mode.warnings.size() == 1);
        CHECK(container_mode.warnings[0] ==
              "annotation cwcreds.coreweave.com/duration has no effect with exchange container-credentials: its "
              "keys live 15 minutes; set annotation cwcreds.coreweave.com/exchange: oidc for 4h keys");
        // With oidc the same annotation is what it says: no warning.
        CHECK(injected(fixture("job.yaml")).warnings.empty());
    }

    TEST_CASE("a CronJob's pod template is found under jobTemplate")
    {
        const json before = fixture("cronjob.yaml");
        const auto result = injected(before);
        check_injected(before, result);
        CHECK(result.patch.at(0).at("path") == "/spec/jobTemplate/spec/template/spec/initContainers");
    }

    TEST_CASE("skipped containers get nothing")
    {
        const json before = fixture("skipped-containers.yaml");
        const auto result = injected(before);
        check_injected(before, result, {"istio-proxy", "fluent-bit"});
    }

    TEST_CASE("a skipped init container (a native sidecar of the pod's own) gets nothing")
    {
        const json before = fixture("skipped-native-sidecar.yaml");
        const auto result = injected(before);
        check_injected(before, result, {"log-shipper"});
        const json& shipper = *find_named(pod_of(result.pod).at("spec").at("initContainers"), "log-shipper");
        CHECK(shipper == *find_named(pod_of(before).at("spec").at("initContainers"), "log-shipper"));
    }

    TEST_CASE("a credentials endpoint an app set itself is not redirected to the sidecar")
    {
        const json before = fixture("own-credentials-endpoint.yaml");
        const auto result = injected(before);
        check_injected(before, result);
        const json& other = *find_named(pod_of(result.pod).at("spec").at("containers"), "other-cloud");
        CHECK(env_value(other, "AWS_CONTAINER_CREDENTIALS_FULL_URI") == "http://169.254.170.23/v1/credentials");
    }

    TEST_CASE("an app's own AWS_CONFIG_FILE stays, and guaranteed sets requests == limits")
    {
        const json before = fixture("own-aws-config.yaml");
        const auto result = injected(before);
        check_injected(before, result);
        const json& spec = pod_of(result.pod).at("spec");
        CHECK(env_value(spec.at("containers").at(0), "AWS_CONFIG_FILE") == "/etc/agent/aws.conf");
        CHECK(find_named(spec.at("containers").at(0).at("volumeMounts"), "cwcreds-aws") == nullptr);
        const json& resources = spec.at("initContainers").at(0).at("resources");
        CHECK(resources.at("requests") == resources.at("limits"));
    }

    TEST_CASE("a Guaranteed GPU Job stays Guaranteed without an annotation, unless the annotation says false")
    {
        const json before = fixture("guaranteed-gpu-job.yaml");
        const auto result = injected(before);
        check_injected(before, result);
        const json& sidecar = pod_of(result.pod).at("spec").at("initContainers").at(0);
        REQUIRE(sidecar.at("name") == "cwcreds");
        CHECK(sidecar.at("resources").at("requests") == sidecar.at("resources").at("limits"));

        json opted_out = before;
        opted_out["spec"]["template"]["metadata"]["annotations"]["cwcreds.coreweave.com/guaranteed"] = "false";
        const auto opted_out_result = injected(opted_out);
        const json& kept = pod_of(opted_out_result.pod).at("spec").at("initContainers").at(0);
        CHECK(kept.at("resources").at("requests") != kept.at("resources").at("limits"));

        // One container without a memory limit: Burstable already, the default sidecar.
        json burstable = before;
        burstable["spec"]["template"]["spec"]["initContainers"][0]["resources"]["limits"].erase("memory");
        const auto burstable_result = injected(burstable);
        const json& plain = pod_of(burstable_result.pod).at("spec").at("initContainers").at(0);
        CHECK(plain.at("resources").at("requests").at("cpu") == "10m");
        // Requests that differ from limits: Burstable too.
        json differing = before;
        differing["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "16";
        const auto differing_result = injected(differing);
        CHECK(pod_of(differing_result.pod)
                  .at("spec")
                  .at("initContainers")
                  .at(0)
                  .at("resources")
                  .at("requests")
                  .at("cpu") == "10m");
    }

    TEST_CASE("a CoreWeave token projected together with a Secret is not mounted into containers that lacked it")
    {
        json pod = fixture("job.yaml");
        json& spec = pod_of(pod)["spec"];
        spec["volumes"] = json::array({{{"name", "app-secrets"},
                                        {"projected",
                                         {{"sources",
                                           json::array({{{"serviceAccountToken",
                                                          {{"audience", "https://coreweave.com/iam"},
                                                           {"path", "cw-token"}}}},
                                                        {{"secret", {{"name", "database-password"}}}}})}}}}});
        spec["containers"][0]["volumeMounts"] =
            json::array({{{"name", "app-secrets"}, {"mountPath", "/var/run/app"}, {"readOnly", true}}});
        spec["containers"].push_back({{"name", "worker"}, {"image", "registry.example.com/worker:1"}});
        const auto result = injected(pod);
        const json& out = pod_of(result.pod).at("spec");
        const json& worker = *find_named(out.at("containers"), "worker");
        CHECK(find_named(worker.at("volumeMounts"), "app-secrets") == nullptr);
        CHECK(find_named(worker.at("volumeMounts"), "cwcreds-token") != nullptr);
        const json& sidecar = out.at("initContainers").at(0);
        CHECK(find_named(sidecar.at("volumeMounts"), "app-secrets") == nullptr);
        CHECK(find_named(out.at("volumes"), "cwcreds-token") != nullptr);
        // Injected again: the same pod, not a second token volume.
        CHECK(injected(result.pod).patch.empty());
    }

    TEST_CASE("a container named in skip-containers before its webhook adds it is skipped once it arrives")
    {
        // cwcreds's webhook runs first (name order): vault-k8s's agent is not there yet.
        json pod = fixture("job.yaml");
        pod_of(pod)["metadata"]["annotations"]["cwcreds.coreweave.com/skip-containers"] = "vault-agent";
        const auto first = injected(pod);
        REQUIRE(first.warnings.size() == 1);
        CHECK(first.warnings[0] ==
              "annotation cwcreds.coreweave.com/skip-containers names container 'vault-agent', which the pod does "
              "not have (yet): it is skipped if added later");
        // vault-k8s adds its agent; cwcreds is reinvoked and leaves it alone.
        json meshed = first.pod;
        pod_of(meshed)["spec"]["containers"].push_back(
            {{"name", "vault-agent"},
             {"image", "hashicorp/vault:1.17"},
             {"volumeMounts", json::array({{{"name", "home-sidecar"}, {"mountPath", "/home/vault"}}})}});
        const auto second = injected(meshed);
        CHECK(second.patch.empty());
        CHECK(second.warnings.empty());
    }

    TEST_CASE("Windows pods are refused with the reason, not the API server's field errors")
    {
        json by_os = fixture("job.yaml");
        pod_of(by_os)["spec"]["os"] = {{"name", "windows"}};
        CHECK(refusal_of(by_os).starts_with("Windows pod: the cwcreds sidecar runs on Linux nodes only"));
        json by_selector = fixture("job.yaml");
        pod_of(by_selector)["spec"]["nodeSelector"] = {{"kubernetes.io/os", "windows"}};
        CHECK(refusal_of(by_selector).starts_with("Windows pod:"));
        json linux = fixture("job.yaml");
        pod_of(linux)["spec"]["os"] = {{"name", "linux"}};
        CHECK(refusal_of(linux) == "not refused");
    }

    TEST_CASE("a container added after injection (admission reinvocation) gets what it lacks, nothing else")
    {
        json pod = injected(fixture("direct-setup.yaml")).pod;
        pod["spec"]["containers"].push_back({{"name", "late"}, {"image", "x"}});
        const auto result = injected(pod);
        CHECK(result.pod.at("spec").at("initContainers").size() == 1);
        for (const json& op : result.patch) {
            CHECK(op.at("path").get<std::string>().starts_with("/spec/containers/1/"));
        }
        CHECK(env_value(result.pod.at("spec").at("containers").at(1), "AWS_CONTAINER_CREDENTIALS_FULL_URI") ==
              "http://127.0.0.1:9911/v1/credentials");
    }

    TEST_CASE("a pod's own annotations win over the inject and webhook options")
    {
        const json pod = {{"apiVersion", "v1"},
                          {"kind", "Pod"},
                          {"metadata",
                           {{"annotations",
                             {{"cwcreds.coreweave.com/image", "mirror.example.com/cwcreds:0.1.0"},
                              {"cwcreds.coreweave.com/org-id", "pod-org"},
                              {"cwcreds.coreweave.com/exchange", "oidc"}}}}},
                          {"spec", {{"containers", {{{"name", "a"}, {"image", "x"}}}}}}};
        const auto result = injected(pod);
        const json& sidecar = result.pod.at("spec").at("initContainers").at(0);
        CHECK(sidecar.at("image") == "mirror.example.com/cwcreds:0.1.0");
        CHECK(env_value(sidecar, "CWCREDS_ORG_ID") == "pod-org");
        CHECK(env_value(sidecar, "CWCREDS_EXCHANGE") == "oidc");
    }

    TEST_CASE("a bare pod without metadata or annotations gets both")
    {
        const json before = {{"spec", {{"containers", {{{"name", "a"}, {"image", "x"}}}}}}};
        const auto result = injected(json{{"apiVersion", "v1"}, {"kind", "Pod"}, {"spec", before.at("spec")}});
        CHECK(result.pod.at("metadata").at("annotations").contains("cwcreds.coreweave.com/injected"));
        CHECK(result.pod.at("metadata").at("annotations").at("cwcreds.coreweave.com/aws-config") ==
              std::string{cw::default_aws_config()});
    }

    TEST_CASE("pods it cannot serve correctly are refused, naming the cause, with nothing injected")
    {
        CHECK(refusal_of(fixture("refuse-container-name.yaml")) ==
              "the pod already has a container named 'cwcreds' (added by the kustomize component or by hand?); "
              "rename it or drop the inject label");
        CHECK(refusal_of(fixture("refuse-volume-name.yaml")) ==
              "the pod already has a volume named 'cwcreds-token'; cwcreds needs that name");
        CHECK(refusal_of(fixture("refuse-host-network.yaml")) ==
              "hostNetwork pod: the cwcreds sidecar's ports would be the node's, shared with every hostNetwork pod "
              "there; choose two ports free on the node with annotations cwcreds.coreweave.com/port and "
              "cwcreds.coreweave.com/probe-port");
        CHECK(refusal_of(fixture("refuse-mount-path.yaml")) ==
              "container 'app' already mounts volume 'certs' at /var/run/secrets/cwcreds.coreweave.com/serviceaccount, "
              "where cwcreds mounts its own");
        CHECK(refusal_of(fixture("refuse-token-file.yaml")) ==
              "container 'app' sets AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE to \"/secrets/other-token\", but the "
              "sidecar authenticates callers with the token at "
              "/var/run/secrets/cwcreds.coreweave.com/serviceaccount/oidc-token; remove the "
              "variable or point it there");
    }

    TEST_CASE("a bad or placeholder org id or image is refused naming where it came from")
    {
        json pod = fixture("refuse-volume-name.yaml");
        pod["spec"].erase("volumes");
        auto with = [&pod](const std::string& key, const json& value) {
            json copy = pod;
            copy["metadata"]["annotations"][key] = value;
            return copy;
        };
        CHECK(refusal_of(with("cwcreds.coreweave.com/org-id", "<ORG-ID>")) ==
              "annotation cwcreds.coreweave.com/org-id: '<ORG-ID>' is a placeholder left from an example: put your "
              "CoreWeave organization id there");
        CHECK(refusal_of(with("cwcreds.coreweave.com/org-id", "REPLACE-WITH-ORG-ID"))
                  .starts_with("annotation cwcreds.coreweave.com/org-id: 'REPLACE-WITH-ORG-ID' is a placeholder"));
        CHECK(refusal_of(with("cwcreds.coreweave.com/image", "<REGISTRY>/cwcreds:1"))
                  .starts_with("annotation cwcreds.coreweave.com/image: '<REGISTRY>/cwcreds:1' is a placeholder"));
        // The value came from the option, not from an annotation: the message says so.
        cw::InjectOptions bad_org = options();
        bad_org.org_id = "acme/admin";
        CHECK(refusal_of(pod, bad_org) ==
              "--org-id: 'acme/admin' is not an organization id (letters, digits, '-', '_', '.')");
    }

    TEST_CASE("bad annotations and missing settings are refused, naming the annotation")
    {
        json pod = fixture("refuse-volume-name.yaml");
        pod["spec"].erase("volumes");
        auto with = [&pod](const std::string& key, const json& value) {
            json copy = pod;
            copy["metadata"]["annotations"][key] = value;
            return copy;
        };
        CHECK(refusal_of(with("cwcreds.coreweave.com/exchange", "sts")) ==
              "annotation cwcreds.coreweave.com/exchange: 'sts' is not container-credentials or oidc");
        CHECK(refusal_of(with("cwcreds.coreweave.com/duration", "13h")) ==
              "annotation cwcreds.coreweave.com/duration: '13h' is not a duration from 1s to 12h (examples: 15m, 1h)");
        CHECK(refusal_of(with("cwcreds.coreweave.com/guaranteed", "yes")) ==
              "annotation cwcreds.coreweave.com/guaranteed: 'yes' is not true or false");
        CHECK(refusal_of(with("cwcreds.coreweave.com/org-id", "../../admin")) ==
              "annotation cwcreds.coreweave.com/org-id: '../../admin' is not an organization id (letters, digits, '-', "
              "'_', '.')");
        CHECK(refusal_of(with("cwcreds.coreweave.com/image", 42)) ==
              "annotation cwcreds.coreweave.com/image is not a string");
        cw::InjectOptions no_org = options();
        no_org.org_id.clear();
        CHECK(refusal_of(pod, no_org) ==
              "no CoreWeave organization id: set annotation cwcreds.coreweave.com/org-id or give --org-id");
        CHECK(refusal_of(with("cwcreds.coreweave.com/injected", "0.1.0")) ==
              "annotation cwcreds.coreweave.com/injected says cwcreds was injected, but there is no cwcreds init "
              "container; remove the annotation");
        json no_containers = pod;
        no_containers["spec"]["containers"] = json::array();
        CHECK(refusal_of(no_containers) == "the pod has no containers");
        json bad_env = pod;
        bad_env["spec"]["containers"][0]["env"] = "A=1";
        CHECK(refusal_of(bad_env) == "container 'app'.env is not a list of objects");
    }

    TEST_CASE("objects without a pod pass through unchanged")
    {
        const json config_map = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "x"}}}};
        const auto result = injected(config_map);
        CHECK(result.pod == config_map);
        CHECK(result.patch == json::array());
        // A Deployment-like kind of another group is not ours either.
        CHECK_FALSE(cw::pod_pointer(json{{"apiVersion", "example.com/v1"}, {"kind", "Deployment"}}));
    }

    TEST_CASE("the opt-out labels leave a workload as it is")
    {
        json workload = fixture("job.yaml");
        workload["metadata"]["labels"]["cwcreds.coreweave.com/inject"] = "false";
        CHECK(injected(workload).patch == json::array());
        json pod_opt_out = fixture("job.yaml");
        pod_opt_out["spec"]["template"]["metadata"]["labels"]["cwcreds/inject"] = "false";
        CHECK(injected(pod_opt_out).pod == pod_opt_out);
    }

    TEST_CASE("the injected sidecar is the component's sidecar (manifests/components/cwcreds)")
    {
        const json component = load_yaml("manifests/components/cwcreds/sidecar.yaml");
        json expected = component.at("spec").at("template").at("spec").at("initContainers").at(0);
        // A Burstable pod: a BestEffort one's sidecar has no resources.
        json cronjob = fixture("cronjob.yaml");
        pod_of(cronjob)["spec"]["containers"][0]["resources"] = {{"requests", {{"cpu", "1"}}}};
        json actual = injected(cronjob).pod;
        actual = pod_of(actual).at("spec").at("initContainers").at(0);
        // Settings come from a ConfigMap there and from the options here;
        // the image from kustomize's images: there and --image here.
        for (json* c : {&expected, &actual}) {
            c->erase("env");
            c->erase("envFrom");
            c->erase("image");
        }
        CHECK(actual == expected);
        CHECK(read_source_file("manifests/components/cwcreds/aws-config") == cw::default_aws_config());
        // ...and the token and config volumes are the component's, but for
        // the config's source (a ConfigMap there, the pod annotation here).
        const json volumes = component.at("spec").at("template").at("spec").at("volumes");
        const json injected_volumes = pod_of(injected(fixture("cronjob.yaml")).pod).at("spec").at("volumes");
        CHECK(*find_named(injected_volumes, "cwcreds-token") == *find_named(volumes, "cwcreds-token"));
    }

    TEST_CASE("guaranteed resources are those of components/cwcreds-guaranteed")
    {
        // The webhook's sidecar and the component's must be the same size, so
        // a pod is Guaranteed the same way whichever route injected it.
        const json injected_resources =
            pod_of(injected(fixture("own-aws-config.yaml")).pod).at("spec").at("initContainers").at(0).at("resources");
        CHECK(injected_resources.at("requests") == injected_resources.at("limits"));
        auto component =
            cw::parse_yaml_documents(read_source_file("manifests/components/cwcreds-guaranteed/kustomization.yaml"));
        REQUIRE(std::holds_alternative<std::vector<json>>(component));
        int compared = 0;
        for (const json& patch : std::get<std::vector<json>>(component).at(0).at("patches")) {
            auto ops = cw::parse_yaml_documents(patch.at("patch").get<std::string>());
            REQUIRE(std::holds_alternative<std::vector<json>>(ops));
            for (const json& op : std::get<std::vector<json>>(ops).at(0)) {
                if (op.at("op") == "replace" && op.at("path").get<std::string>().ends_with("/resources")) {
                    CHECK_MESSAGE(op.at("value") == injected_resources, op.at("path"));
                    ++compared;
                }
            }
        }
        CHECK(compared == 7);  // Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod
    }
}
