#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "gateway/options.h"

namespace sluice::gateway {

/// `sluice-gateway --check-config`: what the flags could not check alone (addresses to bind
/// are IPs or names, the admin address an IP, worker addresses and the discovery name are
/// host names or IPs with a port, the channel layer is memory, none or a redis:// URL).
/// Binds, resolves and connects nothing. Returns the one-line summary printed on success,
/// or the first error, naming its flag.
absl::StatusOr<std::string> CheckConfig(const Options& options);

}  // namespace sluice::gateway
