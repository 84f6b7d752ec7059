// The pod mutation on the shapes real clusters add to a pod: mesh proxies,
// the node's network, per-pod ports and sizes, QoS classes.
#include <doctest/doctest.h>

#include "injection_rig.hpp"

using namespace inject_rig;

TEST_SUITE("inject::pod_shapes")
{
    TEST_CASE("a meshed pod needs no annotation: the mesh's token and cwcreds's are mounted at different paths")
    {
        // Istio's webhook ran first: its proxy mounts istio-token at
        // /var/run/secrets/tokens, in either mode (classic: a container;
        // native: an init container that keeps running).
        const json istio_proxy = {
            {"name", "istio-proxy"},
            {"image", "docker.io/istio/proxyv2:1.24.0"},
            {"volumeMounts", json::array({{{"name", "istio-token"}, {"mountPath", "/var/run/secrets/tokens"}},
                                          {{"name", "istio-envoy"}, {"mountPath", "/etc/istio/proxy"}}})}};
        const json istio_volumes = json::parse(R"([
            {"name": "istio-token", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "istio-ca", "path": "istio-token", "expirationSeconds": 43200}}]}},
            {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}])");
        for (const bool native : {false, true}) {
            CAPTURE(native);
            json pod = fixture("job.yaml");
            json& spec = pod_of(pod)["spec"];
            json proxy = istio_proxy;
            if (native) {
                proxy["restartPolicy"] = "Always";
                spec["initContainers"] = json::array({proxy});
            } else {
                spec["containers"].push_back(proxy);
            }
            for (const json& volume : istio_volumes) {
                spec["volumes"].push_back(volume);
            }
            const auto result = injected(pod);
            check_injected(pod, result);
            // Classic mode cannot work (Istio rewrites the sidecar's startup
            // probe to an agent not yet running): the owner is told how out.
            CHECK(result.warnings.size() == (native ? 0U : 1U));
            if (!native) {
                CHECK(result.warnings.at(0).ends_with("set annotation sidecar.istio.io/nativeSidecar: \"true\""));
            }
            const json& out = pod_of(result.pod).at("spec");
            // The proxy is left as Istio wrote it; in native mode cwcreds
            // starts after it, so the exchange goes out through it.
            const json& kept = *find_named(out.at(native ? "initContainers" : "containers"), "istio-proxy");
            CHECK(kept == proxy);
            CHECK(out.at("initContainers").at(native ? 1 : 0).at("name") == "cwcreds");
            CHECK(injected(result.pod).patch.empty());
        }
    }

    TEST_CASE("a hostNetwork pod with its own ports is injected on them, its probes on loopback")
    {
        json pod = fixture("refuse-host-network.yaml");
        pod["metadata"]["annotations"] = {{"cwcreds.coreweave.com/port", "19911"},
                                          {"cwcreds.coreweave.com/probe-port", "19912"}};
        const auto result = injected(pod);
        const json& spec = result.pod.at("spec");
        const json& sidecar = spec.at("initContainers").at(0);
        CHECK(env_value(sidecar, "CWCREDS_LISTEN") == "127.0.0.1:19911");
        // Nothing opened on the node's interfaces: the kubelet shares the
        // pod's network and probes loopback.
        CHECK(env_value(sidecar, "CWCREDS_PROBE_LISTEN") == "127.0.0.1:19912");
        for (const char* probe : {"startupProbe", "livenessProbe"}) {
            CHECK_MESSAGE(sidecar.at(probe).at("httpGet").at("host") == "127.0.0.1", probe);
        }
        // Both declared, so the scheduler keeps a second such pod off the node.
        CHECK(sidecar.at("ports") ==
              json::array({{{"name", "cwcreds"}, {"containerPort", 19911}, {"protocol", "TCP"}},
                           {{"name", "cwcreds-probes"}, {"containerPort", 19912}, {"protocol", "TCP"}}}));
        CHECK(env_value(spec.at("containers").at(0), "AWS_CONTAINER_CREDENTIALS_FULL_URI") ==
              "http://127.0.0.1:19911/v1/credentials");
        CHECK(injected(result.pod).patch.empty());

        // Only one of the two: still refused.
        pod["metadata"]["annotations"].erase("cwcreds.coreweave.com/port");
        CHECK(refusal_of(pod).starts_with("hostNetwork pod: "));
        // A host port the pod's own container declares.
        pod["metadata"]["annotations"]["cwcreds.coreweave.com/port"] = "9100";
        CHECK(refusal_of(pod) ==
              "container 'exporter' declares port 9100, which the cwcreds sidecar's credentials "
              "listener uses on the node's network; choose another with annotation "
              "cwcreds.coreweave.com/port");
        pod["metadata"]["annotations"]["cwcreds.coreweave.com/port"] = "19912";
        CHECK(refusal_of(pod) ==
              "annotations cwcreds.coreweave.com/port and cwcreds.coreweave.com/probe-port name "
              "the same port 19912");
        for (const char* bad : {"0", "65536", "99x", "", "-1"}) {
            pod["metadata"]["annotations"]["cwcreds.coreweave.com/port"] = bad;
            CHECK(refusal_of(pod) ==
                  "annotation cwcreds.coreweave.com/port: '" + std::string{bad} + "' is not a port number (1-65535)");
        }
    }

    TEST_CASE("resource annotations size the sidecar, and a Guaranteed pod's sidecar stays requests == limits")
    {
        json pod = fixture("job.yaml");
        json& annotations = pod_of(pod)["metadata"]["annotations"];
        annotations["cwcreds.coreweave.com/cpu-limit"] = "1";
        annotations["cwcreds.coreweave.com/memory-request"] = "32Mi";
        const json resources = pod_of(injected(pod).pod).at("spec").at("initContainers").at(0).at("resources");
        CHECK(resources ==
              json{{"requests", {{"cpu", "10m"}, {"memory", "32Mi"}}}, {"limits", {{"cpu", "1"}, {"memory", "64Mi"}}}});

        annotations["cwcreds.coreweave.com/memory-request"] = "128Mi";
        CHECK(refusal_of(pod) ==
              "annotation cwcreds.coreweave.com/memory-request: the sidecar's request '128Mi' is above its limit "
              "'64Mi'");
        annotations["cwcreds.coreweave.com/memory-request"] = "32MB";
        CHECK(refusal_of(pod) ==
              "annotation cwcreds.coreweave.com/memory-request: '32MB' is not a Kubernetes "
              "quantity (examples: 64Mi, 1Gi)");
        annotations.erase("cwcreds.coreweave.com/memory-request");
        annotations["cwcreds.coreweave.com/cpu-request"] = "1e3";
        CHECK(refusal_of(pod).starts_with("annotation cwcreds.coreweave.com/cpu-request: '1e3' is not"));
        annotations.erase("cwcreds.coreweave.com/cpu-request");

        // Guaranteed: one value of a pair sets both; two that differ are refused.
        json gpu = fixture("guaranteed-gpu-job.yaml");
        json& gpu_annotations = pod_of(gpu)["metadata"]["annotations"];
        gpu_annotations["cwcreds.coreweave.com/cpu-limit"] = "250m";
        gpu_annotations["cwcreds.coreweave.com/memory-request"] = "96Mi";
        const json sized = pod_of(injected(gpu).pod).at("spec").at("initContainers").at(0).at("resources");
        CHECK(sized == json{{"requests", {{"cpu", "250m"}, {"memory", "96Mi"}}},
                            {"limits", {{"cpu", "250m"}, {"memory", "96Mi"}}}});
        gpu_annotations["cwcreds.coreweave.com/cpu-request"] = "200m";
        CHECK(refusal_of(gpu) ==
              "annotations cwcreds.coreweave.com/cpu-request and cwcreds.coreweave.com/cpu-limit "
              "differ ('200m', '250m'), but the sidecar of a Guaranteed pod needs requests == "
              "limits");
    }

    TEST_CASE("a BestEffort pod stays BestEffort: the sidecar asks for nothing unless annotated")
    {
        json pod = fixture("cronjob.yaml");
        const auto result = injected(pod);
        CHECK_FALSE(pod_of(result.pod).at("spec").at("initContainers").at(0).contains("resources"));
        CHECK(result.warnings.empty());
        // Sized by annotation: the pod becomes Burstable, and the owner is told.
        pod_of(pod)["metadata"]["annotations"]["cwcreds.coreweave.com/memory-limit"] = "48Mi";
        const auto sized = injected(pod);
        CHECK(pod_of(sized.pod).at("spec").at("initContainers").at(0).at("resources").at("limits").at("memory") ==
              "48Mi");
        REQUIRE(sized.warnings.size() == 1);
        CHECK(
            sized.warnings[0].starts_with("no container asks for cpu or memory, but the sidecar's resources make "
                                          "the pod Burstable"));
    }

    TEST_CASE("a container that declares one of the sidecar's ports is refused, naming it")
    {
        json pod = fixture("job.yaml");
        json& app = pod_of(pod)["spec"]["containers"][0];
        app["ports"] = json::array({{{"name", "metrics"}, {"containerPort", 9912}}});
        CHECK(refusal_of(pod) == "container '" + app.at("name").get<std::string>() +
                                     "' declares port 9912 ('metrics'), which the cwcreds sidecar's probe listener "
                                     "uses; choose another with annotation cwcreds.coreweave.com/probe-port");
        // Moved by the annotation, the clash is gone; the credentials port clashes the same way.
        pod_of(pod)["metadata"]["annotations"]["cwcreds.coreweave.com/probe-port"] = "9920";
        CHECK(refusal_of(pod) == "not refused");
        app["ports"] = json::array({{{"containerPort", 9911}}});
        CHECK(refusal_of(pod) == "container '" + app.at("name").get<std::string>() +
                                     "' declares port 9911, which the cwcreds sidecar's credentials listener uses; "
                                     "choose another with annotation cwcreds.coreweave.com/port");
        app["ports"] = json::array({{{"containerPort", 9920}}});
        CHECK(refusal_of(pod).starts_with("container '" + app.at("name").get<std::string>() +
                                          "' declares port 9920, which the cwcreds sidecar's probe listener uses"));
        // A host port of that number off the node's network clashes with nothing.
        app["ports"] = json::array({{{"containerPort", 8080}, {"hostPort", 9912}}});
        CHECK(refusal_of(pod) == "not refused");
    }

    TEST_CASE("the startup probe opens at the startup gate, and the kubelet gives it half a minute more")
    {
        json pod = fixture("job.yaml");
        const json sidecar = pod_of(injected(pod).pod).at("spec").at("initContainers").at(0);
        CHECK(sidecar.at("startupProbe").at("httpGet").at("path") == "/startupz");
        CHECK(sidecar.at("startupProbe").at("failureThreshold") == 150);  // serve's 2m gate + 30 s
        CHECK(env_value(sidecar, "CWCREDS_STARTUP_GATE") == "<absent>");

        json& annotations = pod_of(pod)["metadata"]["annotations"];
        annotations["cwcreds.coreweave.com/startup-gate"] = "10m";
        const json gated = pod_of(injected(pod).pod).at("spec").at("initContainers").at(0);
        CHECK(env_value(gated, "CWCREDS_STARTUP_GATE") == "10m");
        CHECK(gated.at("startupProbe").at("failureThreshold") == 630);
        annotations["cwcreds.coreweave.com/startup-gate"] = "0s";  // never without keys: the old minute
        CHECK(
            pod_of(injected(pod).pod).at("spec").at("initContainers").at(0).at("startupProbe").at("failureThreshold") ==
            60);
        for (const char* bad : {"2h", "soon", "-1m"}) {
            annotations["cwcreds.coreweave.com/startup-gate"] = bad;
            CHECK(refusal_of(pod).starts_with("annotation cwcreds.coreweave.com/startup-gate: '" + std::string{bad} +
                                              "' is not a duration from 0s to 1h"));
        }
    }

    TEST_CASE("a Job without activeDeadlineSeconds is warned about, through inject and the webhook")
    {
        const std::string warning =
            "a Job without activeDeadlineSeconds: if CoreWeave rejects the token, the app starts after the startup "
            "gate and fails, but nothing bounds how long the Job runs; set activeDeadlineSeconds";
        json job = fixture("job.yaml");
        CHECK(injected(job).warnings.empty());
        job["spec"].erase("activeDeadlineSeconds");
        CHECK(injected(job).warnings == std::vector<std::string>{warning});
        // The Pod the Job controller makes, as the webhook sees it.
        json pod = {{"apiVersion", "v1"},
                    {"kind", "Pod"},
                    {"metadata",
                     {{"name", "nightly-export-x7k2p"},
                      {"ownerReferences", json::array({{{"apiVersion", "batch/v1"},
                                                        {"kind", "Job"},
                                                        {"name", "nightly-export"},
                                                        {"uid", "0c1d2e3f"},
                                                        {"controller", true}}})}}},
                    {"spec", job.at("spec").at("template").at("spec")}};
        const auto patch = cw::pod_patch(pod, options());
        REQUIRE(std::holds_alternative<cw::Patch>(patch));
        CHECK(std::get<cw::Patch>(patch).warnings == std::vector<std::string>{warning});
        pod["spec"]["activeDeadlineSeconds"] = 3600;
        CHECK(std::get<cw::Patch>(cw::pod_patch(pod, options())).warnings.empty());
    }
}
