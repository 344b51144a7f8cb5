#include "gateway/scope.h"

#include <cctype>

#include "common/text.h"

namespace sluice::gateway {
namespace http = boost::beast::http;

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

v1::Address ToAddress(const boost::asio::ip::tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  v1::Address out;
  out.set_host(address.to_string());
  out.set_port(endpoint.port());
  return out;
}

absl::StatusOr<v1::Scope> BuildScope(const http::request_header<>& request, const FieldList& fields,
                                     bool websocket, const v1::Address& client,
                                     const v1::Address& server, std::string_view root_path) {
  v1::Scope scope;
  scope.set_type(websocket ? v1::Scope::TYPE_WEBSOCKET : v1::Scope::TYPE_HTTP);
  scope.set_http_version(request.version() == 10 ? "1.0" : "1.1");
  if (!websocket) {
    std::string method(request.method_string());
    for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    scope.set_method(std::move(method));
  }
  scope.set_scheme(websocket ? "ws" : "http");

  const std::string_view target = request.target();
  if (target.empty() || target.front() != '/') {
    return absl::InvalidArgumentError("request target must be a path");
  }
  const size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  auto path = PercentDecode(raw_path);
  if (!path || !IsValidUtf8(*path)) {
    return absl::InvalidArgumentError("path is not percent-encoded UTF-8");
  }
  scope.set_path(*std::move(path));
  scope.set_raw_path(std::string(raw_path));
  if (question != std::string_view::npos)
    scope.set_query_string(std::string(target.substr(question + 1)));
  scope.set_root_path(std::string(root_path));

  for (const auto& [field_name, value] : fields) {
    v1::Header* header = scope.add_headers();
    std::string name = field_name;
    for (char& c : name) c = AsciiLower(c);
    header->set_value(value);
    const bool subprotocols = websocket && name == "sec-websocket-protocol";
    header->set_name(std::move(name));
    if (subprotocols) {
      std::string_view rest = value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view item = Trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (item.empty()) continue;
        for (char c : item) {
          if (!IsTokenChar(c)) return absl::InvalidArgumentError("malformed subprotocol");
        }
        scope.add_subprotocols(std::string(item));
      }
    }
  }
  *scope.mutable_client() = client;
  *scope.mutable_server() = server;
  return scope;
}

}  // namespace sluice::gateway
