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
                                     const boost::asio::ip::tcp::endpoint& client,
                                     const boost::asio::ip::tcp::endpoint& server,
                                     std::string_view root_path);

}  // namespace sluice::gateway
