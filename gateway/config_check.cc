#include "gateway/config_check.h"

#include <chrono>
#include <sstream>

#include "common/config_check.h"
#include "layer/redis_layer.h"

namespace sluice::gateway {

absl::StatusOr<std::string> CheckConfig(const Options& options) {
  if (absl::Status s = CheckBindAddress("--listen", options.listen, /*ip_only=*/false); !s.ok()) {
    return s;
  }
  if (options.admin) {
    if (absl::Status s = CheckBindAddress("--admin", *options.admin, /*ip_only=*/true); !s.ok()) {
      return s;
    }
  }
  std::ostringstream workers;
  if (options.discovery) {
    const HostPort target{options.discovery->name, options.discovery->port};
    if (absl::Status s = CheckPeerAddress("--workers", target); !s.ok()) return s;
    workers << "dns:" << target.ToString() << " every "
            << std::chrono::duration<double>(options.discovery->interval).count() << " s";
  } else {
    if (options.workers.empty()) return absl::InvalidArgumentError("--workers: none given");
    for (const HostPort& worker : options.workers) {
      if (absl::Status s = CheckPeerAddress("--workers", worker); !s.ok()) return s;
      workers << (workers.tellp() > 0 ? "," : "") << worker.ToString();
    }
  }
  if (options.layer != "memory" && options.layer != "none") {
    const auto redis = layer::ParseRedisUrl(options.layer);
    if (!redis) {
      return absl::InvalidArgumentError(
          "--layer: expected memory, none or redis://HOST[:PORT][/DB], got \"" + options.layer +
          "\"");
    }
    const HostPort address{redis->host, static_cast<uint16_t>(redis->port)};
    if (absl::Status s = CheckPeerAddress("--layer", address); !s.ok()) return s;
  }
  if (options.max_connections == 0) {
    return absl::InvalidArgumentError("--max-connections: 0 admits no client");
  }
  std::ostringstream out;
  out << "sluice-gateway: config ok: listen " << options.listen.ToString() << ", admin "
      << Describe(options.admin ? &*options.admin : nullptr) << ", workers " << workers.str()
      << ", layer " << options.layer << ", threads "
      << (options.threads == 0 ? std::string("auto") : std::to_string(options.threads))
      << ", drain-delay " << options.drain_delay.count() << " s, drain-timeout "
      << options.drain_timeout.count() << " s";
  return out.str();
}

}  // namespace sluice::gateway
