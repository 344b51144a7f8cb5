#include "sluice/router.h"

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

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  for (size_t slash; (slash = path.find('/', begin)) != std::string_view::npos; begin = slash + 1) {
    out.push_back(path.substr(begin, slash - begin));
  }
  out.push_back(path.substr(begin));
  return out;
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

bool Router::Match(std::string_view pattern, std::string_view path,
                   std::vector<std::pair<std::string, std::string>>* captures) {
  const auto want = Segments(pattern);
  const auto have = Segments(path);
  if (want.size() != have.size()) return false;
  std::vector<std::pair<std::string, std::string>> found;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i].size() > 2 && want[i].front() == '{' && want[i].back() == '}') {
      if (have[i].empty()) return false;
      found.emplace_back(want[i].substr(1, want[i].size() - 2), have[i]);
    } else if (want[i] != have[i]) {
      return false;
    }
  }
  for (auto& capture : found) captures->push_back(std::move(capture));
  return true;
}

std::unique_ptr<Consumer> Router::Create(Scope& scope) {
  for (const Route& route : routes_) {
    if (route.type == scope.type && Match(route.pattern, scope.path, &scope.url_route)) {
      return route.app->Create(scope);
    }
  }
  if (scope.type == Scope::Type::kHttp) return std::make_unique<HttpNotFound>();
  return std::make_unique<WebSocketNotFound>();
}

}  // namespace sluice
