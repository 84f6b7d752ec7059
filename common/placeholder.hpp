// Values copied from examples before a user edited them.
#pragma once

#include <string_view>

namespace cw {

// `<ORG-ID>`, `REPLACE-WITH-ORG-ID`, `<REGISTRY>/cwcreds:<VERSION>`: what the
// examples and the kustomize components hold until a user edits them. Never
// anyone's real value.
bool is_placeholder(std::string_view value);

}  // namespace cw
