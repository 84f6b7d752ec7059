// `cwcreds webhook`: the mutating admission webhook.
#pragma once

#include "inject/pod_mutation.hpp"
#include "webhook/webhook_settings.hpp"

namespace cw {

// Runs until SIGTERM/SIGINT, then returns 0.
int run_webhook(const WebhookSettings& settings, const InjectOptions& mutation);

}  // namespace cw
