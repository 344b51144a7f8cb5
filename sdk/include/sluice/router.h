#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/consumer.h"

namespace sluice {

/// Routes by protocol and by URL path (Channels' URLRouter, with the protocol split built
/// in). The first matching route wins. Unmatched HTTP gets 404; an unmatched WebSocket is
/// denied (403); an unmatched channel message is reported unhandled. Channel routes match
/// the channel name exactly, so a Router with only Channel routes is the channel-name router
/// for background workers (Channels' ChannelNameRouter) and may be used on its own.
///
/// Path patterns are '/'-separated segments, matched segment by segment (a trailing slash is
/// significant). A segment is a literal, or a capture of the whole segment:
///   - `{name}` or `{name:str}`: one non-empty segment;
///   - `{name:int}`: one segment of ASCII digits (at most 18: it fits an int64_t);
///   - `{name:slug}`: one segment of ASCII letters, digits, '-' and '_';
///   - `{name:path}`: the rest of the path, '/'s included, non-empty; only as the last
///     segment.
/// A segment that does not convert means the route does not match (the next one is tried).
/// `{}` is a literal. Captures are the text as it appears in scope.path (percent-decoded),
/// appended to scope.url_route in pattern order; Scope::IntParam reads an int capture.
/// A pattern with an unknown converter or a misplaced `{name:path}` is a programming error:
/// Http, WebSocket and Include throw std::invalid_argument.
///
/// Nesting (Django's include(), a nested Channels URLRouter): Include(prefix, router) matches
/// `prefix` against the leading whole segments of the path (captures allowed) and hands the
/// rest, from its '/' on (empty when the path ends with the prefix), to `router`, whose
/// patterns are then written from that point: Include("/api/{version:int}", api) with
/// api->Http("/users/{id:int}", …) matches "/api/2/users/7", and url_route holds
/// version=2 then id=7 (outer captures first; Param returns the first of equal names). When
/// the inner router has no match, the outer one goes on with its next route (as Django does;
/// Channels stops at the inner router). scope.path is not changed.
///
/// Thread-safety: configure before the worker starts; Create is then safe from any thread.
/// Lifetime: routes hold their applications (shared).
class Router final : public Application {
 public:
  Router& Http(std::string_view pattern, std::shared_ptr<Application> app);
  Router& WebSocket(std::string_view pattern, std::shared_ptr<Application> app);
  /// Consumes the named channel `name` (a background channel, "thumbnails"): each message
  /// sent to it runs one instance of `app` (a ChannelConsumer) on one worker.
  Router& Channel(std::string_view name, std::shared_ptr<Application> app);
  /// HTTP and WebSocket scopes whose path starts with `prefix` are routed on by `router`
  /// with the rest of the path. A trailing '/' of `prefix` is ignored ("/api/" == "/api").
  Router& Include(std::string_view prefix, std::shared_ptr<Router> router);

  std::unique_ptr<Consumer> Create(Scope& scope) override;
  /// The Channel routes' names (an included router is reached by HTTP and WebSocket scopes
  /// only: its Channel routes are not).
  std::vector<std::string> Channels() const override;

  /// Matches `path` against `pattern`; on success appends captures to *captures. False for
  /// an invalid pattern.
  static bool Match(std::string_view pattern, std::string_view path,
                    std::vector<std::pair<std::string, std::string>>* captures);

 private:
  enum class Kind { kHttp, kWebSocket, kChannel, kInclude };
  struct Route {
    Kind kind;
    std::string pattern;
    std::shared_ptr<Application> app;
    std::shared_ptr<Router> router;  // kInclude
  };

  Router& Add(Kind kind, std::string_view pattern, std::shared_ptr<Application> app);
  /// The consumer of the first route matching `path` (the scope's path, or the rest of it
  /// below an Include), or null; url_route is left as it was when there is none.
  std::unique_ptr<Consumer> Find(Scope& scope, std::string_view path) const;

  std::vector<Route> routes_;
};

/// Picks an application by the scope's type (Channels' ProtocolTypeRouter): one for HTTP,
/// one for WebSocket, one for background channels (usually a Router of Channel routes).
/// A type without an application gets what an unmatched Router route gets (404, a denied
/// handshake, an unhandled message). Channels() is the channel application's.
/// Thread-safety and lifetime: as Router.
class ProtocolRouter final : public Application {
 public:
  ProtocolRouter& Http(std::shared_ptr<Application> app);
  ProtocolRouter& WebSocket(std::shared_ptr<Application> app);
  ProtocolRouter& Channel(std::shared_ptr<Application> app);

  std::unique_ptr<Consumer> Create(Scope& scope) override;
  std::vector<std::string> Channels() const override;

 private:
  std::shared_ptr<Application> http_;
  std::shared_ptr<Application> websocket_;
  std::shared_ptr<Application> channel_;
};

/// The consumers a router answers with when nothing matches: HTTP 404, a denied WebSocket
/// handshake (403), an unhandled channel message. For middleware and custom routers.
std::unique_ptr<Consumer> NotFound(Scope::Type type);

}  // namespace sluice
