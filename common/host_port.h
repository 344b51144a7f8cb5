#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

/// "HOST:PORT" as given on a command line; HOST may be a name, an IPv4 address or a
/// bracketed IPv6 address ("[::1]:80").
struct HostPort {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const;
};

absl::StatusOr<HostPort> ParseHostPort(std::string_view text);
/// A comma-separated list of HOST:PORT, at least one.
absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text);

}  // namespace sluice
