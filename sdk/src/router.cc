#include "sluice/router.h"

#include <algorithm>
#include <stdexcept>

#include "sluice/middleware.h"

namespace sluice {
namespace {

using Captures = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kNoMatch = std::string_view::npos;
// An int capture fits an int64_t.
constexpr size_t kMaxIntDigits = 18;

enum class Converter { kLiteral, kStr, kInt, kSlug, kPath, kInvalid };

struct Segment {
  Converter converter;
  std::string_view name;
};

// One pattern segment: a literal, or "{name}" / "{name:converter}".
Segment Parse(std::string_view want) {
  if (want.size() <= 2 || want.front() != '{' || want.back() != '}') {
    return {Converter::kLiteral, {}};
  }
  const std::string_view inside = want.substr(1, want.size() - 2);
  const size_t colon = inside.find(':');
  const std::string_view name = inside.substr(0, colon);
  const std::string_view converter =
      colon == std::string_view::npos ? "str" : inside.substr(colon + 1);
  if (name.empty()) return {Converter::kInvalid, {}};
  if (converter == "str") return {Converter::kStr, name};
  if (converter == "int") return {Converter::kInt, name};
  if (converter == "slug") return {Converter::kSlug, name};
  if (converter == "path") return {Converter::kPath, name};
  return {Converter::kInvalid, {}};
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsSlugChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

bool Converts(Converter converter, std::string_view have) {
  if (have.empty()) return false;
  switch (converter) {
    case Converter::kStr:
      return true;
    case Converter::kInt:
      return have.size() <= kMaxIntDigits && std::all_of(have.begin(), have.end(), IsDigit);
    case Converter::kSlug:
      return std::all_of(have.begin(), have.end(), IsSlugChar);
    default:
      return false;
  }
}

// Walks `pattern` and `path` segment by segment ('/'-separated). Returns where the match
// ended in `path`: path.size() when all of it matched; with `prefix`, also the offset of the
// '/' after the pattern's last segment; kNoMatch otherwise. Captures are appended only when
// `captures` is given. Allocates nothing else.
size_t Walk(std::string_view pattern, std::string_view path, bool prefix, Captures* captures) {
  size_t p = 0;
  size_t q = 0;
  for (;;) {
    const size_t pattern_end = std::min(pattern.find('/', p), pattern.size());
    const size_t path_end = std::min(path.find('/', q), path.size());
    const Segment segment = Parse(pattern.substr(p, pattern_end - p));
    const bool pattern_done = pattern_end == pattern.size();
    if (segment.converter == Converter::kPath) {
      const std::string_view rest = path.substr(q);
      if (!pattern_done || rest.empty()) return kNoMatch;
      if (captures) captures->emplace_back(segment.name, rest);
      return path.size();
    }
    const std::string_view have = path.substr(q, path_end - q);
    if (segment.converter == Converter::kLiteral) {
      if (pattern.substr(p, pattern_end - p) != have) return kNoMatch;
    } else {
      if (!Converts(segment.converter, have)) return kNoMatch;
      if (captures) captures->emplace_back(segment.name, have);
    }
    const bool path_done = path_end == path.size();
    if (pattern_done) {
      if (path_done) return path.size();
      return prefix ? path_end : kNoMatch;
    }
    if (path_done) return kNoMatch;
    p = pattern_end + 1;
    q = path_end + 1;
  }
}

void CheckPattern(std::string_view pattern) {
  size_t p = 0;
  for (;;) {
    const size_t end = std::min(pattern.find('/', p), pattern.size());
    const Converter converter = Parse(pattern.substr(p, end - p)).converter;
    if (converter == Converter::kInvalid) {
      throw std::invalid_argument("route pattern \"" + std::string(pattern) +
                                  "\": a capture needs a name and one of the converters str, "
                                  "int, slug, path");
    }
    if (end == pattern.size()) return;
    if (converter == Converter::kPath) {
      throw std::invalid_argument("route pattern \"" + std::string(pattern) +
                                  "\": a path capture must be the last segment");
    }
    p = end + 1;
  }
}

}  // namespace

std::unique_ptr<Consumer> NotFound(Scope::Type type) {
  // HTTP 404; a WebSocket denied (403); a channel message reported unhandled.
  return Refuse(type, 404);
}

Router& Router::Add(Kind kind, std::string_view pattern, std::shared_ptr<Application> app) {
  if (kind != Kind::kChannel) CheckPattern(pattern);
  routes_.push_back({kind, std::string(pattern), std::move(app), nullptr});
  return *this;
}

Router& Router::Http(std::string_view pattern, std::shared_ptr<Application> app) {
  return Add(Kind::kHttp, pattern, std::move(app));
}

Router& Router::WebSocket(std::string_view pattern, std::shared_ptr<Application> app) {
  return Add(Kind::kWebSocket, pattern, std::move(app));
}

Router& Router::Channel(std::string_view name, std::shared_ptr<Application> app) {
  return Add(Kind::kChannel, name, std::move(app));
}

Router& Router::Include(std::string_view prefix, std::shared_ptr<Router> router) {
  if (prefix.ends_with('/')) prefix.remove_suffix(1);
  Add(Kind::kInclude, prefix, nullptr);
  routes_.back().router = std::move(router);
  return *this;
}

std::vector<std::string> Router::Channels() const {
  std::vector<std::string> channels;
  for (const Route& route : routes_) {
    if (route.kind == Kind::kChannel) channels.push_back(route.pattern);
  }
  return channels;
}

bool Router::Match(std::string_view pattern, std::string_view path,
                   std::vector<std::pair<std::string, std::string>>* captures) {
  // Checked first without capturing, so a route that does not match costs no allocation.
  if (Walk(pattern, path, /*prefix=*/false, nullptr) == kNoMatch) return false;
  Walk(pattern, path, /*prefix=*/false, captures);
  return true;
}

std::unique_ptr<Consumer> Router::Find(Scope& scope, std::string_view path) const {
  for (const Route& route : routes_) {
    switch (route.kind) {
      case Kind::kChannel:
        if (scope.type == Scope::Type::kChannel && route.pattern == path) {
          return route.app->Create(scope);
        }
        break;
      case Kind::kHttp:
      case Kind::kWebSocket:
        if (scope.type ==
                (route.kind == Kind::kHttp ? Scope::Type::kHttp : Scope::Type::kWebSocket) &&
            Match(route.pattern, path, &scope.url_route)) {
          return route.app->Create(scope);
        }
        break;
      case Kind::kInclude: {
        if (scope.type == Scope::Type::kChannel) break;
        const size_t rest = Walk(route.pattern, path, /*prefix=*/true, nullptr);
        if (rest == kNoMatch) break;
        const size_t captured = scope.url_route.size();
        Walk(route.pattern, path, /*prefix=*/true, &scope.url_route);
        if (auto consumer = route.router->Find(scope, path.substr(rest))) return consumer;
        scope.url_route.resize(captured);
        break;
      }
    }
  }
  return nullptr;
}

std::unique_ptr<Consumer> Router::Create(Scope& scope) {
  if (auto consumer = Find(scope, scope.path)) return consumer;
  return NotFound(scope.type);
}

ProtocolRouter& ProtocolRouter::Http(std::shared_ptr<Application> app) {
  http_ = std::move(app);
  return *this;
}

ProtocolRouter& ProtocolRouter::WebSocket(std::shared_ptr<Application> app) {
  websocket_ = std::move(app);
  return *this;
}

ProtocolRouter& ProtocolRouter::Channel(std::shared_ptr<Application> app) {
  channel_ = std::move(app);
  return *this;
}

std::unique_ptr<Consumer> ProtocolRouter::Create(Scope& scope) {
  Application* app = nullptr;
  switch (scope.type) {
    case Scope::Type::kHttp:
      app = http_.get();
      break;
    case Scope::Type::kWebSocket:
      app = websocket_.get();
      break;
    case Scope::Type::kChannel:
      app = channel_.get();
      break;
  }
  return app != nullptr ? app->Create(scope) : NotFound(scope.type);
}

std::vector<std::string> ProtocolRouter::Channels() const {
  return channel_ ? channel_->Channels() : std::vector<std::string>();
}

}  // namespace sluice
