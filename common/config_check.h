#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/host_port.h"

namespace sluice {

// `--check-config`: both binaries parse and validate their flags, print one summary line and
// exit 0, or print what is wrong and exit 2, without binding, connecting or starting
// anything (a Kubernetes manifest's command line is checked this way in CI, k8s/check.sh).
// These are the checks both share; each error names the flag.

/// Exit status of `--check-config` (and of any configuration error) when the flags are wrong.
inline constexpr int kConfigErrorExit = 2;

/// True when `flag` is among the arguments, whatever else is wrong with them (so a parse
/// error can still be reported the `--check-config` way).
bool HasFlag(int argc, const char* const* argv, std::string_view flag);

/// A host to bind: an IPv4 or IPv6 literal, or (unless `ip_only`) a DNS name.
absl::Status CheckBindAddress(std::string_view flag, const HostPort& address, bool ip_only);
/// A host to connect to: an IP literal or a DNS name (RFC 1123 labels, not resolved), and
/// a port that is not 0.
absl::Status CheckPeerAddress(std::string_view flag, const HostPort& address);
/// A regular file this process can read (certificates, keys).
absl::Status CheckReadableFile(std::string_view flag, const std::string& path);

/// "HOST:PORT", or "off" for an unset optional address.
std::string Describe(const HostPort* address);

}  // namespace sluice
