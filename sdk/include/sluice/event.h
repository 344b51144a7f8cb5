#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sluice {

/// HTTP header list: names lower-cased on the way in, order and duplicates kept. Values are
/// bytes as sent (ASGI byte strings). A vector of (name, value) pairs, with one difference:
/// a braced list converts to it only explicitly (`Headers headers{{"x-a", "1"}}`, or an
/// assignment `headers = {{"x-a", "1"}}`), never where a function takes Headers (`Respond(200,
/// body, {{"x-a", "1"}})` does not compile). That is a fence: GCC 12 destroys a braced temporary in
/// a co_await expression twice, and passing headers that way inside `co_await` is the likeliest
/// place to write one. Build them in a named local.
class Headers : public std::vector<std::pair<std::string, std::string>> {
 public:
  using Base = std::vector<std::pair<std::string, std::string>>;
  Headers() = default;
  explicit Headers(std::initializer_list<value_type> list) : Base(list) {}
  Headers& operator=(std::initializer_list<value_type> list) {
    Base::operator=(list);
    return *this;
  }
  Headers(Base headers) : Base(std::move(headers)) {}  // NOLINT(google-explicit-constructor)
};

struct Address {
  std::string host;
  uint16_t port = 0;
};

/// A channel-layer message: a JSON object with a string "type"; text is a string, bytes are
/// Message::binary_t (msgpack on the wire, as channels_redis writes it).
using Message = nlohmann::json;

/// The ASGI connection scope (asgiref www.rst), plus `url_route`, filled by the Router, and
/// `cookies`, `user` and `request_id`, filled by middleware (sluice/middleware.h): the
/// gateway never sends those, so they are empty unless a middleware set them.
/// Plain data: copy it freely. Thread-safety: as any value (the runtime gives each consumer
/// its own, and middleware edits it in Create, before the consumer exists). Lifetime: the
/// runtime's copy outlives the consumer bound to it.
struct Scope {
  /// kChannel: a background-channel message (Router::Channel); `path` is the channel name.
  enum class Type { kHttp, kWebSocket, kChannel };
  Type type = Type::kHttp;
  std::string http_version;  // "1.0" or "1.1"
  std::string method;        // upper-case; empty for WebSocket
  std::string scheme;        // http, https, ws, wss
  std::string path;          // percent-decoded UTF-8, without root_path
  std::string raw_path;      // bytes as sent, without the query
  std::string query_string;  // bytes after '?', undecoded
  std::string root_path;
  Headers headers;
  std::optional<Address> client;
  std::optional<Address> server;
  std::vector<std::string> subprotocols;  // WebSocket only
  /// Parameters captured by the Router from the path pattern ("/chat/{room}").
  std::vector<std::pair<std::string, std::string>> url_route;
  /// The request's cookies (CookieMiddleware): name → value, the first of equal names.
  std::map<std::string, std::string, std::less<>> cookies;
  /// The connection's user (AuthMiddleware): what the resolver returned; null is anonymous.
  Message user;
  /// The connection's request id (RequestIdMiddleware); empty without that middleware.
  std::string request_id;

  /// The first value of header `name` (lower-case), if present.
  std::optional<std::string_view> Header(std::string_view name) const;
  /// A captured URL parameter, if present.
  std::optional<std::string_view> Param(std::string_view name) const;
  /// A captured URL parameter as an integer ({name:int} captures always convert), if present
  /// and a decimal int64_t.
  std::optional<int64_t> IntParam(std::string_view name) const;
  /// A cookie's value (after CookieMiddleware), if present.
  std::optional<std::string_view> Cookie(std::string_view name) const;
  /// The first value of query parameter `name`, percent-decoded, if present.
  std::optional<std::string> Query(std::string_view name) const;
};

// ASGI events. Gateway → application: HttpRequest, HttpDisconnect, WebSocketConnect,
// WebSocketResume, WebSocketReceive, WebSocketDisconnect, LayerMessage. Application → gateway: the
// rest.
struct HttpRequest {
  std::string body;
  bool more_body = false;
};
struct HttpDisconnect {};
struct HttpResponseStart {
  int status = 200;
  Headers headers;
  bool trailers = false;
};
struct HttpResponseBody {
  std::string body;
  bool more_body = false;
};
struct WebSocketConnect {};
/// websocket.resume, instead of websocket.connect: the connection moved here from a worker
/// that died or drained (docs/failover.md). It is accepted already; `state` is what the
/// previous instance saved last with SaveState (none: nullopt). The events that instance had
/// not acknowledged follow.
struct WebSocketResume {
  std::optional<std::string> state;
  int moves = 1;  // times the connection has moved, this move included
};
struct WebSocketAccept {
  std::string subprotocol;  // empty: none
  Headers headers;
};
/// websocket.receive and websocket.send: a text (UTF-8) or binary message.
struct WebSocketMessage {
  std::string data;
  bool binary = false;
};
struct WebSocketReceive : WebSocketMessage {};
struct WebSocketSend : WebSocketMessage {};
struct WebSocketClose {
  int code = 1000;
  std::string reason;
};
struct WebSocketDisconnect {
  int code = 1005;
  std::string reason;
};

/// A channel-layer message delivered to the connection (gateway → application), in order
/// with its other events. Consumers see it through their On(type, …) handlers.
struct LayerMessage {
  Message message;
  /// Background channels only: the same when a message is delivered again (at least once).
  std::string delivery_id;
};

using Event = std::variant<HttpRequest, HttpDisconnect, HttpResponseStart, HttpResponseBody,
                           WebSocketConnect, WebSocketAccept, WebSocketReceive, WebSocketSend,
                           WebSocketClose, WebSocketDisconnect, LayerMessage, WebSocketResume>;

/// The ASGI type name of an event ("http.request", "websocket.send", ...).
std::string_view TypeName(const Event& event);

}  // namespace sluice
