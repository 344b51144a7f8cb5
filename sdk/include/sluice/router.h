#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/consumer.h"

namespace sluice {

/// Routes by protocol and by URL path (Channels' ProtocolTypeRouter + URLRouter). Patterns
/// are literal segments and `{name}` captures of one non-empty segment, e.g.
/// "/chat/{room}/"; captures land in scope.url_route. The first matching route wins.
/// Unmatched HTTP gets 404; an unmatched WebSocket is denied (403). Channel routes match the
/// channel name exactly.
/// Thread-safety: configure before the worker starts; Create is then safe from any thread.
class Router final : public Application {
 public:
  Router& Http(std::string_view pattern, std::shared_ptr<Application> app);
  Router& WebSocket(std::string_view pattern, std::shared_ptr<Application> app);
  /// Consumes the named channel `name` (a background channel, "thumbnails"): each message
  /// sent to it runs one instance of `app` (a ChannelConsumer) on one worker.
  Router& Channel(std::string_view name, std::shared_ptr<Application> app);

  std::unique_ptr<Consumer> Create(Scope& scope) override;
  std::vector<std::string> Channels() const override;

  /// Matches `path` against `pattern`; on success appends captures to *captures.
  static bool Match(std::string_view pattern, std::string_view path,
                    std::vector<std::pair<std::string, std::string>>* captures);

 private:
  struct Route {
    Scope::Type type;
    std::string pattern;
    std::shared_ptr<Application> app;
  };
  std::vector<Route> routes_;
};

}  // namespace sluice
