#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <string_view>

#include "absl/status/statusor.h"
#include "gateway/request_parser.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

/// The ASGI scope of a request (reference.md): path percent-decoded (InvalidArgument when
/// that is malformed or not UTF-8, which the caller answers with 400), `fields` lower-cased
/// in the order sent with duplicates, subprotocols from every Sec-WebSocket-Protocol field.
absl::StatusOr<v1::Scope> BuildScope(const boost::beast::http::request_header<>& request,
                                     const FieldList& fields, bool websocket,
                                     const v1::Address& client, const v1::Address& server,
                                     std::string_view root_path);

/// An endpoint as a scope carries it; an IPv4-mapped IPv6 address as plain IPv4. Built once
/// per connection: formatting an address costs more than the rest of a small request's scope.
v1::Address ToAddress(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace sluice::gateway
