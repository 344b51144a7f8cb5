#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "worker/runtime.h"

namespace sluice::worker {

/// `--check-config` for every worker built on RunWorker: what the flags could not check
/// alone (--listen is HOST:PORT with an IP or a host name, --admin an IP). Binds nothing and
/// runs no lifespan hook. Returns the one-line summary printed on success, or the first
/// error, naming its flag.
absl::StatusOr<std::string> CheckConfig(const Options& options);

}  // namespace sluice::worker
