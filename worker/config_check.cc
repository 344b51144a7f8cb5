#include "worker/config_check.h"

#include <chrono>
#include <sstream>

#include "common/config_check.h"

namespace sluice::worker {

absl::StatusOr<std::string> CheckConfig(const Options& options) {
  auto listen = ParseHostPort(options.listen);
  if (!listen.ok()) {
    return absl::InvalidArgumentError("--listen: " + std::string(listen.status().message()));
  }
  if (absl::Status s = CheckBindAddress("--listen", *listen, /*ip_only=*/false); !s.ok()) {
    return s;
  }
  if (options.admin) {
    if (absl::Status s = CheckBindAddress("--admin", *options.admin, /*ip_only=*/true); !s.ok()) {
      return s;
    }
  }
  std::ostringstream out;
  out << "sluice-worker: config ok: listen " << listen->ToString() << ", admin "
      << Describe(options.admin ? &*options.admin : nullptr) << ", capacity " << options.capacity
      << ", threads "
      << (options.threads == 0 ? std::string("auto") : std::to_string(options.threads))
      << ", drain-timeout " << std::chrono::duration<double>(options.drain_timeout).count()
      << " s, close-timeout " << std::chrono::duration<double>(options.close_timeout).count()
      << " s";
  return out.str();
}

}  // namespace sluice::worker
