// Fuzz target: cw::inject_manifests, what `cwcreds inject` does with its input.
//
// Input is whatever a user pipes in, so YAML of any shape, aliases and
// nesting included. Invariants: no crash, no exception, bounded work (the
// depth and node limits); an error names a document; an output injected
// again is unchanged (idempotence through the YAML writer and reader).
#include "fuzz_support.hpp"
#include "inject/manifest_injection.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    cw::InjectOptions options;
    options.image = "cwcreds:0.1.0";
    options.org_id = "fuzz-org";
    const auto result = cw::inject_manifests(cw_fuzz::as_text(data, size), options);
    if (const auto* error = std::get_if<cw::ManifestError>(&result)) {
        FUZZ_CHECK(!error->message.empty());
        return 0;
    }
    const auto& once = std::get<cw::ManifestOutput>(result).text;
    const auto twice = cw::inject_manifests(once, options);
    FUZZ_CHECK(std::holds_alternative<cw::ManifestOutput>(twice));
    FUZZ_CHECK(std::get<cw::ManifestOutput>(twice).text == once);
    return 0;
}
