#include "sluice/router.h"

#include <algorithm>

#include "sluice/channel_consumer.h"
#include "sluice/http_consumer.h"
#include "sluice/websocket_consumer.h"

namespace sluice {
namespace {

class HttpNotFound final : public HttpConsumer {
  Task<void> Handle() override { co_await Respond(404, "Not Found\n"); }
};

class WebSocketNotFound final : public WebSocketConsumer {
  Task<void> OnConnect() override { co_await Close(); }
};

// No handlers: the message is reported unhandled (logged, counted) and acknowledged.
class ChannelNotFound final : public ChannelConsumer {};

// Walks `pattern` and `path` segment by segment ('/'-separated; the counts must agree).
// Captures are appended only when `captures` is given. Allocates nothing else.
bool Walk(std::string_view pattern, std::string_view path,
          std::vector<std::pair<std::string, std::string>>* captures) {
  size_t p = 0;
  size_t q = 0;
  for (;;) {
    const size_t pattern_end = std::min(pattern.find('/', p), pattern.size());
    const size_t path_end = std::min(path.find('/', q), path.size());
    const std::string_view want = pattern.substr(p, pattern_end - p);
    const std::string_view have = path.substr(q, path_end - q);
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      if (have.empty()) return false;
      if (captures) captures->emplace_back(want.substr(1, want.size() - 2), have);
    } else if (want != have) {
      return false;
    }
    const bool pattern_done = pattern_end == pattern.size();
    const bool path_done = path_end == path.size();
    if (pattern_done || path_done) return pattern_done && path_done;
    p = pattern_end + 1;
    q = path_end + 1;
  }
}

}  // namespace

Router& Router::Http(std::string_view pattern, std::shared_ptr<Application> app) {
  routes_.push_back({Scope::Type::kHttp, std::string(pattern), std::move(app)});
  return *this;
}

Router& Router::WebSocket(std::string_view pattern, std::shared_ptr<Application> app) {
  routes_.push_back({Scope::Type::kWebSocket, std::string(pattern), std::move(app)});
  return *this;
}

Router& Router::Channel(std::string_view name, std::shared_ptr<Application> app) {
  routes_.push_back({Scope::Type::kChannel, std::string(name), std::move(app)});
  return *this;
}

std::vector<std::string> Router::Channels() const {
  std::vector<std::string> channels;
  for (const Route& route : routes_) {
    if (route.type == Scope::Type::kChannel) channels.push_back(route.pattern);
  }
  return channels;
}

bool Router::Match(std::string_view pattern, std::string_view path,
                   std::vector<std::pair<std::string, std::string>>* captures) {
  // Checked first without capturing, so a route that does not match costs no allocation.
  if (!Walk(pattern, path, nullptr)) return false;
  Walk(pattern, path, captures);
  return true;
}

std::unique_ptr<Consumer> Router::Create(Scope& scope) {
  for (const Route& route : routes_) {
    if (route.type != scope.type) continue;
    if (scope.type == Scope::Type::kChannel) {
      if (route.pattern == scope.path) return route.app->Create(scope);
      continue;
    }
    if (Match(route.pattern, scope.path, &scope.url_route)) {
      return route.app->Create(scope);
    }
  }
  if (scope.type == Scope::Type::kHttp) return std::make_unique<HttpNotFound>();
  if (scope.type == Scope::Type::kChannel) return std::make_unique<ChannelNotFound>();
  return std::make_unique<WebSocketNotFound>();
}

}  // namespace sluice
