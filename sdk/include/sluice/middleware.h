#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/consumer.h"
#include "sluice/event.h"

namespace sluice {

/// Middleware is an Application that wraps an Application (Channels' BaseMiddleware). Its
/// Create reads or fills the scope, then returns inner().Create(scope), or a consumer of its
/// own that refuses the connection (the inner application then never sees it). The factory
/// functions below take the inner application first and return the wrapped one, so a stack
/// reads inside out; the outermost runs first:
///
///   auto app = RequestIdMiddleware(
///       OriginValidator(CookieMiddleware(AuthMiddleware(router, resolver)), policy));
///
/// Subclass Middleware to write your own. Channels() is the inner application's, so a
/// wrapped Router still announces its background channels.
/// Thread-safety: Create runs on the connection's loop thread, concurrently with other
/// connections' Create: keep per-connection state in the scope or the consumer, never in the
/// middleware. Lifetime: holds its inner application (shared).
class Middleware : public Application {
 public:
  explicit Middleware(std::shared_ptr<Application> inner);
  std::vector<std::string> Channels() const override { return inner_->Channels(); }

 protected:
  Application& inner() const { return *inner_; }

 private:
  std::shared_ptr<Application> inner_;
};

/// A consumer that refuses a connection as a router's "not found" does, but with the status
/// given: an HTTP response `status` (body: its reason phrase; `headers` added), or, for a
/// WebSocket, a denied handshake (the gateway answers 403 whatever `status` says: ASGI has no
/// other denial without the websocket.http.response extension).
std::unique_ptr<Consumer> Refuse(Scope::Type type, int status, Headers headers = {});

// ---- Origin validation ------------------------------------------------------------------

/// Which WebSocket origins a validator admits. Each pattern in `allowed` is one of:
///   - `*`: any origin that parses (scheme://host[:port]);
///   - `example.com`: that host exactly, any scheme and port;
///   - `.example.com`: example.com and every subdomain of it, any scheme and port;
///   - `example.com:8443`, `.example.com:8443`: as above, and only that port (an origin
///     without a port has its scheme's: 80 for http/ws, 443 for https/wss);
///   - `https://example.com[:port]`, `https://.example.com[:port]`: that scheme, host (or
///     domain) and port (the scheme's default when absent).
/// Hosts compare case-insensitively; IPv6 literals are written in brackets ("[::1]").
/// Browsers send `Origin: null` from sandboxed frames, file: pages and some redirects, and
/// non-browser clients usually send no Origin at all; both are refused unless
/// `allow_missing` (even with `*`: admitting them is a separate decision). An Origin that
/// does not parse, or more than one Origin header, is refused.
struct OriginPolicy {
  std::vector<std::string> allowed;
  bool allow_missing = false;
};

/// Whether `policy` admits an Origin header value (nullopt: no header). Throws
/// std::invalid_argument for a pattern that does not parse.
bool OriginAllowed(std::optional<std::string_view> origin, const OriginPolicy& policy);

/// Denies the handshake (403 at the gateway) of a WebSocket whose Origin `policy` refuses
/// (Channels' OriginValidator / AllowedHostsOriginValidator, without Django's settings:
/// the allowed hosts are given). HTTP and channel scopes pass through untouched. Throws
/// std::invalid_argument for a pattern that does not parse.
std::shared_ptr<Application> OriginValidator(std::shared_ptr<Application> inner,
                                             const OriginPolicy& policy);

// ---- Cookies --------------------------------------------------------------------------------

/// Adds the cookies of one Cookie header value (RFC 6265 §4.2: `name=value; name2=value2`)
/// to *cookies. Whitespace around names and values is dropped, a value in double quotes
/// loses them (no other decoding: values are as sent), a piece without '=' or with an empty
/// name is skipped, and the first of equal names wins (a browser sends the cookie with the
/// most specific path first). Never throws on any input.
void ParseCookies(std::string_view header,
                  std::map<std::string, std::string, std::less<>>* cookies);

/// Fills scope.cookies from every Cookie header of an HTTP or WebSocket scope, in order
/// (Channels' CookieMiddleware). Put it outside middleware that reads cookies.
std::shared_ptr<Application> CookieMiddleware(std::shared_ptr<Application> inner);

// ---- Authentication -------------------------------------------------------------------------

/// What a UserResolver decided about a connection: a user, anonymous, or a refusal.
struct AuthDecision {
  /// A user: any JSON value but null (e.g. {"id": 7, "name": "ann"}).
  static AuthDecision User(Message user);
  static AuthDecision Anonymous() { return {}; }
  /// Refuses the connection: a WebSocket is denied (403), HTTP gets 401 with
  /// `WWW-Authenticate: challenge` when one is given (e.g. `Bearer realm="api"`).
  static AuthDecision Refuse(std::string challenge = {});

  Message user;  // null: anonymous
  bool refused = false;
  std::string challenge;
};

/// Decides who a connection's user is from its scope (cookies, headers, query: a session id,
/// a bearer token…). Called once per connection, on its loop thread, possibly on several
/// threads at once: it must be thread-safe, and quick (it holds up that thread's other
/// connections; a slow lookup belongs in a cache). An exception it throws fails the
/// connection as a consumer's would (HTTP 500, a WebSocket closed 1011 or denied).
using UserResolver = std::function<AuthDecision(const Scope&)>;

/// Runs `resolver` once per HTTP or WebSocket connection, before the inner application
/// creates its consumer, and puts the user in scope.user (Channels' AuthMiddleware, with the
/// lookup supplied by you). A refusal answers the connection without the inner application.
/// Channel scopes pass through untouched.
std::shared_ptr<Application> AuthMiddleware(std::shared_ptr<Application> inner,
                                            UserResolver resolver);

// ---- Request ids ----------------------------------------------------------------------------

/// At most this many characters in a request id.
inline constexpr size_t kMaxRequestIdSize = 128;

/// Whether `id` may be used as a request id: 1 to kMaxRequestIdSize characters of ASCII
/// letters, digits and `-_.:+/=@` (safe in a log line and a header, wide enough for UUIDs,
/// base64 and the ids proxies such as Heroku's router and nginx's $request_id make).
bool ValidRequestId(std::string_view id);

/// A fresh request id: 32 random lower-case hex digits (a version-4 UUID's randomness).
/// Thread-safe.
std::string NewRequestId();

struct RequestIdOptions {
  /// The request header to take an id from (lower-case).
  std::string header = "x-request-id";
  /// Take a valid id from the request; otherwise always generate one (when clients are not
  /// trusted to choose it).
  bool trust_incoming = true;
  /// Send the id back in the same header: on the HTTP response and the WebSocket handshake
  /// response (unless the consumer set that header itself).
  bool echo = true;
};

/// Gives every HTTP and WebSocket connection a request id in scope.request_id: the request's
/// own (`X-Request-Id`, when valid and trusted) or a new one; an invalid one is replaced, not
/// refused. The worker's log lines about the connection carry it ("request <id>"), consumers
/// log it from scope().request_id, and with `echo` the client gets it back, so a user's bug
/// report can name the request. Put it outermost, so refusals by inner middleware carry it
/// too. Channel scopes pass through untouched (their messages have delivery ids).
std::shared_ptr<Application> RequestIdMiddleware(std::shared_ptr<Application> inner,
                                                 RequestIdOptions options = {});

}  // namespace sluice
