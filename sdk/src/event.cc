#include "sluice/event.h"

#include <charconv>

#include "common/text.h"

namespace sluice {

std::optional<std::string_view> Scope::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::optional<std::string_view> Scope::Param(std::string_view name) const {
  for (const auto& [key, value] : url_route) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::optional<int64_t> Scope::IntParam(std::string_view name) const {
  const auto text = Param(name);
  int64_t value = 0;
  if (!text || text->empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

std::optional<std::string_view> Scope::Cookie(std::string_view name) const {
  const auto it = cookies.find(name);
  if (it == cookies.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Scope::Query(std::string_view name) const {
  std::string_view rest = query_string;
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const size_t eq = pair.find('=');
    const auto key = PercentDecode(pair.substr(0, eq), /*plus_is_space=*/true);
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return PercentDecode(pair.substr(eq + 1), /*plus_is_space=*/true);
  }
  return std::nullopt;
}

std::string_view TypeName(const Event& event) {
  struct Visitor {
    std::string_view operator()(const HttpRequest&) const { return "http.request"; }
    std::string_view operator()(const HttpDisconnect&) const { return "http.disconnect"; }
    std::string_view operator()(const HttpResponseStart&) const { return "http.response.start"; }
    std::string_view operator()(const HttpResponseBody&) const { return "http.response.body"; }
    std::string_view operator()(const WebSocketConnect&) const { return "websocket.connect"; }
    std::string_view operator()(const WebSocketResume&) const { return "websocket.resume"; }
    std::string_view operator()(const WebSocketAccept&) const { return "websocket.accept"; }
    std::string_view operator()(const WebSocketReceive&) const { return "websocket.receive"; }
    std::string_view operator()(const WebSocketSend&) const { return "websocket.send"; }
    std::string_view operator()(const WebSocketClose&) const { return "websocket.close"; }
    std::string_view operator()(const WebSocketDisconnect&) const { return "websocket.disconnect"; }
    std::string_view operator()(const LayerMessage&) const { return "layer.message"; }
  };
  return std::visit(Visitor{}, event);
}

}  // namespace sluice
