#include "common/host_port.h"

#include <charconv>

namespace sluice {

std::string HostPort::ToString() const {
  const std::string port_text = ":" + std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]" + port_text;
  return host + port_text;
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  const auto bad = [&] {
    return absl::InvalidArgumentError("expected HOST:PORT, got \"" + std::string(text) + "\"");
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad();
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad();  // IPv6 needs brackets
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return bad();
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text) {
  std::vector<HostPort> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t first = part.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    part = part.substr(first, part.find_last_not_of(" \t") - first + 1);
    auto hp = ParseHostPort(part);
    if (!hp.ok()) return hp.status();
    out.push_back(*std::move(hp));
  }
  if (out.empty()) return absl::InvalidArgumentError("expected at least one HOST:PORT");
  return out;
}

}  // namespace sluice
