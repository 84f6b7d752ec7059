// What the pod's cwcreds.coreweave.com/* annotations and the inject or
// webhook options settle, annotations winning, each value checked before it
// reaches a container spec.
#include "inject/mutation_parts.hpp"

#include <algorithm>

#include "common/duration.hpp"

namespace cw::mutation {

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

Settings settle(const json& annotations, const InjectOptions& options, const std::vector<const json*>& containers,
                Warnings& warnings)
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
    settings.image = annotated(annotation::image).value_or(options.image);
    if (settings.image.empty()) {
        refuse("no sidecar image: set annotation " + std::string{annotation::image} + " or give --image");
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
    settings.org_id = annotated(annotation::org_id).value_or(options.org_id);
    if (settings.org_id.empty()) {
        // The direct setup names the org in its URL; migrating keeps it.
        for (const json* container : containers) {
            for (const json& env : list_at(*container, "env", "container")) {
                if (string_at(env, "name") == k_full_uri) {
                    if (auto org = org_in_exchange_url(string_at(env, "value"))) {
                        settings.org_id = *org;
                    }
                }
            }
        }
    }
    if (settings.org_id.empty()) {
        refuse("no CoreWeave organization id: set annotation " + std::string{annotation::org_id} + " or give --org-id");
    }
    if (!is_org_id(settings.org_id)) {
        refuse("annotation " + std::string{annotation::org_id} + ": '" + settings.org_id +
               "' is not an organization id (letters, digits, '-', '_', '.')");
    }
    const std::string guaranteed = annotated(annotation::guaranteed).value_or("false");
    if (guaranteed != "true" && guaranteed != "false") {
        refuse("annotation " + std::string{annotation::guaranteed} + ": '" + guaranteed + "' is not true or false");
    }
    settings.guaranteed = guaranteed == "true";
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
