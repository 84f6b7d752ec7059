# Mutants of app/: the settings table.
# Sourced by scripts/mutants.sh; see there for the format.

mutant fraction-ignored app/config.cpp \
  's/c\.sidecar\.refresh\.refresh_fraction = fraction_value(v, 0\.01, 0\.9);/(void)fraction_value(v, 0.01, 0.9);/' \
  "$unit"
mutant inspect-sends-token-anywhere app/config.cpp \
  's/if (!config\.inspect\.sidecar_url\.empty() \&\& !is_loopback_host(url->host)) {/if (false) {/' \
  "$unit"
# Judged by the unit tests only: under this mutant the integration test would
# start a sidecar listening on 0.0.0.0, and servers here stay on loopback.
mutant non-loopback-listen-allowed app/config.cpp \
  's/if (!config\.allow_non_loopback \&\& !is_loopback_host(config\.sidecar\.server\.host)) {/if (false) {/' \
  "$unit"
# --imds with --listen 0.0.0.0 --allow-non-loopback would hand keys to the network.
mutant imds-off-loopback-allowed app/config.cpp \
  's/^    if (config\.sidecar\.imds\.enabled \&\& !is_loopback_host(config\.sidecar\.server\.host)) {$/    if (false) {/' \
  "$unit"
