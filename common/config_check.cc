#include "common/config_check.h"

#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <filesystem>

namespace sluice {

namespace {

bool IsIp(std::string_view host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(std::string(host), ec);
  return !ec;
}

// RFC 1123: labels of letters, digits and inner hyphens, at most 63 each, 253 in all; one
// trailing dot (a fully qualified name that skips the resolver's search list) is allowed.
bool IsDnsName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  while (!name.empty()) {
    const size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
    if (name.empty()) return false;  // "a..b" or a second trailing dot
  }
  return true;
}

absl::Status Bad(std::string_view flag, const std::string& what) {
  return absl::InvalidArgumentError(std::string(flag) + ": " + what);
}

}  // namespace

bool HasFlag(int argc, const char* const* argv, std::string_view flag) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == flag) return true;
  }
  return false;
}

absl::Status CheckBindAddress(std::string_view flag, const HostPort& address, bool ip_only) {
  if (IsIp(address.host)) return absl::OkStatus();
  if (ip_only) return Bad(flag, "\"" + address.host + "\" is not an IP address");
  if (!IsDnsName(address.host)) {
    return Bad(flag, "\"" + address.host + "\" is neither an IP address nor a host name");
  }
  return absl::OkStatus();
}

absl::Status CheckPeerAddress(std::string_view flag, const HostPort& address) {
  if (!IsIp(address.host) && !IsDnsName(address.host)) {
    return Bad(flag, "\"" + address.host + "\" is neither an IP address nor a host name");
  }
  if (address.port == 0) return Bad(flag, address.ToString() + " has port 0");
  return absl::OkStatus();
}

absl::Status CheckReadableFile(std::string_view flag, const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return Bad(flag, path + " does not exist");
  if (!std::filesystem::is_regular_file(status)) return Bad(flag, path + " is not a file");
  if (::access(path.c_str(), R_OK) != 0) return Bad(flag, path + " is not readable");
  return absl::OkStatus();
}

std::string Describe(const HostPort* address) {
  return address == nullptr ? "off" : address->ToString();
}

}  // namespace sluice
