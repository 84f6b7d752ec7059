// What the pod's cwcreds.coreweave.com/* annotations and the inject or
// webhook options settle, annotations winning, each value checked before it
// reaches a container spec.
#include "inject/mutation_parts.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "common/duration.hpp"
#include "common/placeholder.hpp"

namespace cw::mutation {

namespace {

// A Kubernetes quantity ("250m", "64Mi", "1.5", "2G") as a number, or nullopt
// for anything the API server would refuse (exponent forms like "1e3" are
// refused too: nobody sizes a sidecar that way, and a typo should not pass).
std::optional<double> quantity_value(std::string_view text)
{
    static constexpr std::array<std::pair<std::string_view, double>, 13> k_suffixes{{
        {"Ki", 1024.0},
        {"Mi", 1024.0 * 1024},
        {"Gi", 1024.0 * 1024 * 1024},
        {"Ti", 1024.0 * 1024 * 1024 * 1024},
        {"Pi", 1024.0 * 1024 * 1024 * 1024 * 1024},
        {"Ei", 1024.0 * 1024 * 1024 * 1024 * 1024 * 1024},
        {"m", 1e-3},
        {"k", 1e3},
        {"M", 1e6},
        {"G", 1e9},
        {"T", 1e12},
        {"P", 1e15},
        {"E", 1e18},
    }};
    double scale = 1;
    for (const auto& [suffix, factor] : k_suffixes) {
        if (text.size() > suffix.size() && text.ends_with(suffix)) {
            text.remove_suffix(suffix.size());
            scale = factor;
            break;
        }
    }
    if (text.empty() || text.size() > 20 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; }) ||
        std::count(text.begin(), text.end(), '.') > 1 || text.front() == '.' || text.back() == '.') {
        return std::nullopt;
    }
    double number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return number * scale;
}

// A port annotation: 1-65535.
int port_value(std::string_view key, const std::string& text)
{
    int port = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || error != std::errc{} || end != text.data() + text.size() || port < 1 || port > 65535) {
        refuse("annotation " + std::string{key} + ": '" + text + "' is not a port number (1-65535)");
    }
    return port;
}

}  // namespace

std::string credentials_uri(int port)
{
    return "http://127.0.0.1:" + std::to_string(port) + "/v1/credentials";
}

std::optional<std::string> org_in_exchange_url(std::string_view url)
{
    const std::string prefix = std::string{k_exchange_endpoint} + "/";
    if (url.substr(0, prefix.size()) != prefix) {
        return std::nullopt;
    }
    std::string_view org = url.substr(prefix.size());
    org = org.substr(0, org.find_first_of("/?#"));
    return org.empty() ? std::nullopt : std::optional<std::string>{org};
}

bool is_exchange_url(std::string_view url)
{
    return url.substr(0, k_exchange_endpoint.size()) == k_exchange_endpoint &&
           (url.size() == k_exchange_endpoint.size() || url[k_exchange_endpoint.size()] == '/' ||
            url[k_exchange_endpoint.size()] == '?');
}

bool is_org_id(std::string_view text)
{
    return !text.empty() && text.size() <= 128 && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
    });
}

namespace {

// The sidecar's requests and limits: the defaults (Guaranteed: requests ==
// limits, as components/cwcreds-guaranteed), then each annotation. In a
// Guaranteed sidecar one value of a pair sets both; two that differ would
// make the pod Burstable, which is refused rather than done quietly.
template <typename Annotated>
void settle_resources(Settings& settings, const Annotated& annotated)
{
    Resources& r = settings.resources;
    if (settings.guaranteed) {
        r = Resources{"100m", "64Mi", "100m", "64Mi"};
    }
    const auto take = [&](std::string_view key, std::string& into) -> bool {
        const auto value = annotated(key);
        if (!value) {
            return false;
        }
        if (!quantity_value(*value)) {
            refuse("annotation " + std::string{key} + ": '" + *value + "' is not a Kubernetes quantity (examples: " +
                   (key.find("cpu") != std::string_view::npos ? "100m, 1" : "64Mi, 1Gi") + ")");
        }
        into = *value;
        return true;
    };
    const auto pair = [&](std::string_view request_key, std::string& request, std::string_view limit_key,
                          std::string& limit) {
        const bool has_request = take(request_key, request);
        const bool has_limit = take(limit_key, limit);
        if (settings.guaranteed) {
            if (has_request && !has_limit) {
                limit = request;
            } else if (has_limit && !has_request) {
                request = limit;
            } else if (request != limit) {
                refuse("annotations " + std::string{request_key} + " and " + std::string{limit_key} + " differ ('" +
                       request + "', '" + limit + "'), but the sidecar of a Guaranteed pod needs requests == limits");
            }
        }
        if (*quantity_value(request) > *quantity_value(limit)) {
            refuse("annotation " + std::string{has_request ? request_key : limit_key} + ": the sidecar's request '" +
                   request + "' is above its limit '" + limit + "'");
        }
    };
    pair(annotation::cpu_request, r.cpu_request, annotation::cpu_limit, r.cpu_limit);
    pair(annotation::memory_request, r.memory_request, annotation::memory_limit, r.memory_limit);
}

}  // namespace

Settings settle(const json& annotations, const InjectOptions& options, const std::vector<const json*>& containers,
                bool host_network, Qos qos, Warnings& warnings)
{
    const auto annotated = [&annotations](std::string_view key) -> std::optional<std::string> {
        const json* value = member(annotations, key);
        if (value == nullptr) {
            return std::nullopt;
        }
        if (!value->is_string()) {
            refuse("annotation " + std::string{key} + " is not a string");
        }
        return value->get<std::string>();
    };
    Settings settings;
    const auto annotated_image = annotated(annotation::image);
    settings.image = annotated_image.value_or(options.image);
    if (settings.image.empty()) {
        refuse("no sidecar image: set annotation " + std::string{annotation::image} + " or give --image");
    }
    if (is_placeholder(settings.image)) {
        refuse((annotated_image ? "annotation " + std::string{annotation::image} : std::string{"--image"}) + ": '" +
               settings.image + "' is a placeholder left from an example: put your image there");
    }
    settings.exchange = annotated(annotation::exchange).value_or(options.exchange);
    if (settings.exchange != "container-credentials" && settings.exchange != "oidc") {
        refuse("annotation " + std::string{annotation::exchange} + ": '" + settings.exchange +
               "' is not container-credentials or oidc");
    }
    settings.duration = annotated(annotation::duration).value_or(options.duration);
    const auto duration = parse_duration(settings.duration);
    if (!duration || *duration < std::chrono::seconds{1} || *duration > std::chrono::hours{12}) {
        refuse("annotation " + std::string{annotation::duration} + ": '" + settings.duration +
               "' is not a duration from 1s to 12h (examples: 15m, 1h)");
    }
    // A duration only reaches the sidecar in oidc mode; in the other the keys
    // live 15 minutes whatever the annotation says. Said, not refused: the pod
    // works, just not as its author meant.
    if (annotated(annotation::duration) && settings.exchange != "oidc") {
        warnings.push_back("annotation " + std::string{annotation::duration} + " has no effect with exchange " +
                           settings.exchange + ": its keys live 15 minutes; set annotation " +
                           std::string{annotation::exchange} + ": oidc for " + settings.duration + " keys");
    }
    if (const auto gate = annotated(annotation::startup_gate)) {
        const auto value = parse_duration(*gate);
        if (!value || *value > std::chrono::hours{1}) {
            refuse("annotation " + std::string{annotation::startup_gate} + ": '" + *gate +
                   "' is not a duration from 0s to 1h (examples: 2m, 10m; 0s: never start the app without keys)");
        }
        settings.startup_gate = *gate;
        settings.startup_gate_seconds = std::chrono::ceil<std::chrono::seconds>(*value);
    }
    const auto annotated_org = annotated(annotation::org_id);
    settings.org_id = annotated_org.value_or(options.org_id);
    // Where the org id came from, for a message that sends the user to the right place.
    std::string org_source = annotated_org ? "annotation " + std::string{annotation::org_id} : "--org-id";
    if (settings.org_id.empty()) {
        // The direct setup names the org in its URL; migrating keeps it, and
        // once migrated the sidecar injected then holds it.
        for (const json* container : containers) {
            const bool sidecar = string_at(*container, "name") == k_sidecar;
            for (const json& env : list_at(*container, "env", "container")) {
                if (string_at(env, "name") == k_full_uri) {
                    if (auto org = org_in_exchange_url(string_at(env, "value"))) {
                        settings.org_id = *org;
                        org_source = "the organization in container " + string_at(*container, "name") + "'s " +
                                     std::string{k_full_uri};
                    }
                } else if (sidecar && string_at(env, "name") == "CWCREDS_ORG_ID") {
                    settings.org_id = string_at(env, "value");
                    org_source = "env CWCREDS_ORG_ID of container " + std::string{k_sidecar};
                }
            }
        }
    }
    if (settings.org_id.empty()) {
        refuse("no CoreWeave organization id: set annotation " + std::string{annotation::org_id} + " or give --org-id");
    }
    if (is_placeholder(settings.org_id)) {
        refuse(org_source + ": '" + settings.org_id +
               "' is a placeholder left from an example: put your CoreWeave organization id there");
    }
    if (!is_org_id(settings.org_id)) {
        refuse(org_source + ": '" + settings.org_id + "' is not an organization id (letters, digits, '-', '_', '.')");
    }
    const std::string guaranteed = annotated(annotation::guaranteed).value_or("false");
    if (guaranteed != "true" && guaranteed != "false") {
        refuse("annotation " + std::string{annotation::guaranteed} + ": '" + guaranteed + "' is not true or false");
    }
    settings.guaranteed = guaranteed == "true";
    // A Guaranteed pod stays Guaranteed: the static CPU manager gives its
    // containers exclusive cores only while every container's requests
    // equal its limits, the sidecar's too.
    if (qos == Qos::guaranteed) {
        if (!annotated(annotation::guaranteed)) {
            settings.guaranteed = true;
        } else if (!settings.guaranteed) {
            warnings.push_back("every container's requests equal its limits, but annotation " +
                               std::string{annotation::guaranteed} +
                               " is \"false\": the sidecar makes the pod Burstable");
        }
    }
    // A BestEffort pod (no container asks for cpu or memory) stays
    // BestEffort: the sidecar asks for nothing either, unless annotated.
    static constexpr std::array<std::string_view, 4> k_resource_annotations{
        annotation::cpu_request, annotation::cpu_limit, annotation::memory_request, annotation::memory_limit};
    const bool sized = std::any_of(k_resource_annotations.begin(), k_resource_annotations.end(),
                                   [&annotated](std::string_view key) { return annotated(key).has_value(); });
    if (qos == Qos::best_effort && !settings.guaranteed && !sized) {
        settings.no_resources = true;
    } else {
        if (qos == Qos::best_effort) {
            warnings.push_back(
                "no container asks for cpu or memory, but the sidecar's resources make the pod "
                "Burstable (BestEffort without resource annotations and guaranteed)");
        }
        settle_resources(settings, annotated);
    }

    // Ports. On the node's network (hostNetwork) 9911 and 9912 would be
    // shared with every other such pod and process on the node: the second
    // sidecar could not bind, and its app would reach the first one's.
    settings.host_network = host_network;
    const auto port = annotated(annotation::port);
    const auto probe_port = annotated(annotation::probe_port);
    settings.ports_annotated = port.has_value() && probe_port.has_value();
    if (port) {
        settings.port = port_value(annotation::port, *port);
    }
    if (probe_port) {
        settings.probe_port = port_value(annotation::probe_port, *probe_port);
    }
    if (settings.port == settings.probe_port) {
        refuse("annotations " + std::string{annotation::port} + " and " + std::string{annotation::probe_port} +
               " name the same port " + std::to_string(settings.port));
    }
    if (host_network && !settings.ports_annotated) {
        refuse(
            "hostNetwork pod: the cwcreds sidecar's ports would be the node's, shared with every hostNetwork pod "
            "there; choose two ports free on the node with annotations " +
            std::string{annotation::port} + " and " + std::string{annotation::probe_port});
    }
    const std::string skip = annotated(annotation::skip_containers).value_or("");
    for (std::size_t start = 0; start <= skip.size();) {
        const auto comma = std::min(skip.find(',', start), skip.size());
        if (auto name = trimmed(std::string_view{skip}.substr(start, comma - start)); !name.empty()) {
            settings.skip.insert(std::move(name));
        }
        start = comma + 1;
    }
    // A mesh proxy is added by its own webhook, often after this one runs
    // (webhooks run in name order): a name not there yet is skipped when it
    // arrives (reinvocation), so it is accepted, with a word in case of a typo.
    for (const auto& name : settings.skip) {
        if (std::none_of(containers.begin(), containers.end(),
                         [&name](const json* c) { return string_at(*c, "name") == name; })) {
            warnings.push_back("annotation " + std::string{annotation::skip_containers} + " names container '" + name +
                               "', which the pod does not have (yet): it is skipped if added later");
        }
    }
    settings.has_aws_config_annotation = member(annotations, annotation::aws_config) != nullptr;
    return settings;
}

}  // namespace cw::mutation
