#include "sluice/middleware.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fake_connection.h"
#include "sluice/http_consumer.h"
#include "sluice/router.h"
#include "sluice/websocket_consumer.h"

namespace sluice {
namespace {

using Cookies = std::map<std::string, std::string, std::less<>>;
using testing::FakeConnection;
using testing::RunConsumer;

// An inner application that records the scopes it saw; its consumers accept a WebSocket or
// answer 200 to HTTP, with no headers of their own.
class Inner final : public Application {
 public:
  class Http final : public HttpConsumer {
    Task<void> Handle() override { co_await Respond(200, "ok"); }
  };
  class WebSocket final : public WebSocketConsumer {};

  std::unique_ptr<Consumer> Create(Scope& scope) override {
    ++created;
    seen.push_back(scope);
    if (scope.type == Scope::Type::kWebSocket) return std::make_unique<WebSocket>();
    return std::make_unique<Http>();
  }
  std::vector<std::string> Channels() const override { return {"inner-channel"}; }

  std::atomic<int> created = 0;
  std::vector<Scope> seen;
};

Scope MakeScope(Scope::Type type, Headers::Base headers = {}) {
  Scope scope;
  scope.type = type;
  scope.path = "/p";
  scope.headers = std::move(headers);
  return scope;
}

// Runs a consumer of a WebSocket scope through its handshake; true when it accepted.
bool Accepted(Application& app, Scope scope, Headers* accept_headers = nullptr) {
  auto consumer = app.Create(scope);
  FakeConnection connection;
  connection.inbox.push_back(WebSocketConnect{});
  connection.inbox.push_back(WebSocketDisconnect{});
  if (RunConsumer(*consumer, scope, connection)) throw std::runtime_error("consumer failed");
  if (connection.sent.empty()) throw std::runtime_error("consumer sent nothing");
  if (const auto* accept = std::get_if<WebSocketAccept>(&connection.sent[0])) {
    if (accept_headers) *accept_headers = accept->headers;
    return true;
  }
  if (!std::holds_alternative<WebSocketClose>(connection.sent[0])) {
    throw std::runtime_error("neither accepted nor closed");
  }
  return false;
}

// Runs a consumer of an HTTP scope; its response start.
HttpResponseStart Respond(Application& app, Scope scope) {
  auto consumer = app.Create(scope);
  FakeConnection connection;
  connection.inbox.push_back(HttpRequest{});
  if (RunConsumer(*consumer, scope, connection)) throw std::runtime_error("consumer failed");
  if (connection.sent.empty()) throw std::runtime_error("consumer sent nothing");
  return std::get<HttpResponseStart>(connection.sent[0]);
}

std::optional<std::string> HeaderOf(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// ---- Origins ----

bool Allowed(std::optional<std::string_view> origin, std::vector<std::string> allowed,
             bool allow_missing = false) {
  return OriginAllowed(origin, OriginPolicy{std::move(allowed), allow_missing});
}

TEST(OriginTest, ExactHostAnyPortAndScheme) {
  EXPECT_TRUE(Allowed("http://example.com", {"example.com"}));
  EXPECT_TRUE(Allowed("https://example.com:8443", {"example.com"}));
  EXPECT_TRUE(Allowed("HTTP://Example.COM", {"example.com"}));
  EXPECT_FALSE(Allowed("http://www.example.com", {"example.com"}));
  EXPECT_FALSE(Allowed("http://example.com.evil.net", {"example.com"}));
  EXPECT_FALSE(Allowed("http://evilexample.com", {"example.com"}));
}

TEST(OriginTest, LeadingDotIsTheDomainAndItsSubdomains) {
  EXPECT_TRUE(Allowed("https://example.com", {".example.com"}));
  EXPECT_TRUE(Allowed("https://a.b.example.com", {".example.com"}));
  EXPECT_FALSE(Allowed("https://badexample.com", {".example.com"}));
  EXPECT_FALSE(Allowed("https://example.com.evil.net", {".example.com"}));
}

TEST(OriginTest, PortInThePattern) {
  EXPECT_TRUE(Allowed("http://example.com:8000", {"example.com:8000"}));
  EXPECT_FALSE(Allowed("http://example.com:8001", {"example.com:8000"}));
  EXPECT_FALSE(Allowed("http://example.com", {"example.com:8000"}));
  EXPECT_TRUE(Allowed("http://example.com", {"example.com:80"}));  // the scheme's default
  EXPECT_TRUE(Allowed("https://x.example.com", {".example.com:443"}));
}

TEST(OriginTest, SchemeInThePattern) {
  EXPECT_TRUE(Allowed("https://example.com", {"https://example.com"}));
  EXPECT_TRUE(Allowed("https://example.com:443", {"https://example.com"}));
  EXPECT_FALSE(Allowed("http://example.com", {"https://example.com"}));
  EXPECT_FALSE(Allowed("https://example.com:8443", {"https://example.com"}));
  EXPECT_TRUE(Allowed("https://example.com:8443", {"https://example.com:8443"}));
  EXPECT_TRUE(Allowed("https://www.example.com", {"https://.example.com"}));
}

TEST(OriginTest, IpLiterals) {
  EXPECT_TRUE(Allowed("http://127.0.0.1:5000", {"127.0.0.1"}));
  EXPECT_TRUE(Allowed("http://[::1]:5000", {"[::1]"}));
  EXPECT_FALSE(Allowed("http://[::2]:5000", {"[::1]"}));
}

TEST(OriginTest, StarAdmitsAnyParsableOrigin) {
  EXPECT_TRUE(Allowed("https://anything.example", {"*"}));
  EXPECT_FALSE(Allowed("not an origin", {"*"}));
}

TEST(OriginTest, MissingAndNullAreRefusedUnlessAllowed) {
  EXPECT_FALSE(Allowed(std::nullopt, {"example.com"}));
  EXPECT_FALSE(Allowed("null", {"example.com"}));
  EXPECT_FALSE(Allowed(std::nullopt, {"*"}));
  EXPECT_FALSE(Allowed("null", {"*"}));
  EXPECT_TRUE(Allowed(std::nullopt, {"example.com"}, /*allow_missing=*/true));
  EXPECT_TRUE(Allowed("null", {}, /*allow_missing=*/true));
  EXPECT_FALSE(Allowed("http://example.com", {}, /*allow_missing=*/true));
}

TEST(OriginTest, JunkIsRefused) {
  for (const char* origin :
       {"", "example.com", "http://", "http://example.com/", "http://example.com/path",
        "http://user@example.com", "http://example.com:0", "http://example.com:65536",
        "http://example.com:80x", "http://exa mple.com", "http://[::1", "://example.com",
        "http://example.com:", "http://\xC3\xA9.com"}) {
    EXPECT_FALSE(Allowed(origin, {"*", "example.com"})) << origin;
  }
}

TEST(OriginTest, BadPatternsThrow) {
  EXPECT_THROW(Allowed("http://example.com", {"http://"}), std::invalid_argument);
  EXPECT_THROW(Allowed("http://example.com", {"example.com/path"}), std::invalid_argument);
  EXPECT_THROW(OriginValidator(std::make_shared<Inner>(), OriginPolicy{{"a b"}}),
               std::invalid_argument);
}

TEST(OriginValidatorTest, DeniesAForeignWebSocketAtTheHandshake) {
  auto inner = std::make_shared<Inner>();
  auto app = OriginValidator(inner, OriginPolicy{{"chat.example.com"}});
  EXPECT_FALSE(
      Accepted(*app, MakeScope(Scope::Type::kWebSocket, {{"origin", "https://evil.example.net"}})));
  EXPECT_FALSE(Accepted(*app, MakeScope(Scope::Type::kWebSocket)));
  EXPECT_FALSE(Accepted(*app, MakeScope(Scope::Type::kWebSocket, {{"origin", "null"}})));
  EXPECT_EQ(inner->created, 0);  // the inner application never saw them
  EXPECT_TRUE(
      Accepted(*app, MakeScope(Scope::Type::kWebSocket, {{"origin", "https://chat.example.com"}})));
  EXPECT_EQ(inner->created, 1);
}

TEST(OriginValidatorTest, TwoOriginHeadersAreRefused) {
  auto app = OriginValidator(std::make_shared<Inner>(), OriginPolicy{{"*"}});
  EXPECT_FALSE(Accepted(
      *app, MakeScope(Scope::Type::kWebSocket,
                      {{"origin", "https://a.example"}, {"origin", "https://b.example"}})));
}

TEST(OriginValidatorTest, HttpAndChannelsPassThrough) {
  auto inner = std::make_shared<Inner>();
  auto app = OriginValidator(inner, OriginPolicy{{"chat.example.com"}});
  EXPECT_EQ(
      Respond(*app, MakeScope(Scope::Type::kHttp, {{"origin", "https://evil.example"}})).status,
      200);
  Scope channel = MakeScope(Scope::Type::kChannel);
  app->Create(channel);
  EXPECT_EQ(inner->created, 2);
  EXPECT_EQ(app->Channels(), (std::vector<std::string>{"inner-channel"}));
}

// ---- Cookies ----

Cookies Parse(std::string_view header) {
  Cookies cookies;
  ParseCookies(header, &cookies);
  return cookies;
}

TEST(CookieTest, PairsAndWhitespace) {
  EXPECT_EQ(Parse("a=1; b=2"), (Cookies{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(Parse("  a = 1 ;\tb=2;"), (Cookies{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(Parse("session=abc=def"), (Cookies{{"session", "abc=def"}}));
  EXPECT_EQ(Parse("empty="), (Cookies{{"empty", ""}}));
}

TEST(CookieTest, QuotedValuesLoseTheirQuotes) {
  EXPECT_EQ(Parse("a=\"x y\"; b=\"\""), (Cookies{{"a", "x y"}, {"b", ""}}));
  EXPECT_EQ(Parse("a=\"unterminated"), (Cookies{{"a", "\"unterminated"}}));
  EXPECT_EQ(Parse("a=\""), (Cookies{{"a", "\""}}));
}

TEST(CookieTest, FirstOfEqualNamesWins) { EXPECT_EQ(Parse("a=1; a=2"), (Cookies{{"a", "1"}})); }

TEST(CookieTest, JunkIsSkipped) {
  EXPECT_EQ(Parse(""), Cookies{});
  EXPECT_EQ(Parse(";;; ;"), Cookies{});
  EXPECT_EQ(Parse("novalue; =orphan; ok=1"), (Cookies{{"ok", "1"}}));
  EXPECT_EQ(Parse(std::string("a=\0b; c=d", 9)),
            (Cookies{{"a", std::string("\0b", 2)}, {"c", "d"}}));
  // Every byte value, in every position: never a crash.
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  for (size_t i = 0; i < all.size(); ++i) Parse(all.substr(i) + all.substr(0, i));
}

TEST(CookieMiddlewareTest, FillsTheScopeFromEveryCookieHeader) {
  auto inner = std::make_shared<Inner>();
  auto app = CookieMiddleware(inner);
  Scope scope = MakeScope(Scope::Type::kWebSocket,
                          {{"cookie", "a=1; b=2"}, {"x-other", "c=9"}, {"cookie", "c=3; a=4"}});
  app->Create(scope);
  EXPECT_EQ(scope.cookies, (Cookies{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  ASSERT_EQ(inner->seen.size(), 1u);
  EXPECT_EQ(inner->seen[0].cookies, scope.cookies);
  EXPECT_EQ(scope.Cookie("c"), "3");
  EXPECT_EQ(scope.Cookie("x"), std::nullopt);
}

// ---- Authentication ----

AuthDecision TokenResolver(const Scope& scope) {
  const auto token = scope.Query("token");
  if (!token) return AuthDecision::Anonymous();
  if (*token == "t-ann") return AuthDecision::User({{"name", "ann"}});
  return AuthDecision::Refuse("Bearer realm=\"test\"");
}

TEST(AuthMiddlewareTest, PutsTheResolvedUserInTheScopeOncePerConnection) {
  auto inner = std::make_shared<Inner>();
  int calls = 0;
  auto app = AuthMiddleware(inner, [&](const Scope& scope) {
    ++calls;
    return TokenResolver(scope);
  });
  Scope scope = MakeScope(Scope::Type::kWebSocket);
  scope.query_string = "token=t-ann";
  EXPECT_TRUE(Accepted(*app, scope));
  EXPECT_EQ(calls, 1);  // in Create; running the consumer does not call it again
  ASSERT_EQ(inner->seen.size(), 1u);
  EXPECT_EQ(inner->seen[0].user, (Message{{"name", "ann"}}));
}

TEST(AuthMiddlewareTest, NoCredentialsIsAnonymous) {
  auto inner = std::make_shared<Inner>();
  auto app = AuthMiddleware(inner, TokenResolver);
  EXPECT_EQ(Respond(*app, MakeScope(Scope::Type::kHttp)).status, 200);
  ASSERT_EQ(inner->seen.size(), 1u);
  EXPECT_TRUE(inner->seen[0].user.is_null());
}

TEST(AuthMiddlewareTest, RefusalIs401ForHttpAndADeniedHandshake) {
  auto inner = std::make_shared<Inner>();
  auto app = AuthMiddleware(inner, TokenResolver);
  Scope http = MakeScope(Scope::Type::kHttp);
  http.query_string = "token=wrong";
  const HttpResponseStart start = Respond(*app, http);
  EXPECT_EQ(start.status, 401);
  EXPECT_EQ(HeaderOf(start.headers, "www-authenticate"), "Bearer realm=\"test\"");
  Scope websocket = MakeScope(Scope::Type::kWebSocket);
  websocket.query_string = "token=wrong";
  EXPECT_FALSE(Accepted(*app, websocket));
  EXPECT_EQ(inner->created, 0);
}

TEST(AuthMiddlewareTest, ResolverSeesCookiesWhenCookieMiddlewareIsOutside) {
  auto inner = std::make_shared<Inner>();
  std::string seen_session;
  auto app = CookieMiddleware(AuthMiddleware(inner, [&](const Scope& scope) {
    seen_session = std::string(scope.Cookie("sessionid").value_or(""));
    return AuthDecision::User(seen_session);
  }));
  Scope scope = MakeScope(Scope::Type::kHttp, {{"cookie", "sessionid=s1; csrftoken=x"}});
  app->Create(scope);
  EXPECT_EQ(seen_session, "s1");
  ASSERT_EQ(inner->seen.size(), 1u);
  EXPECT_EQ(inner->seen[0].user, "s1");
}

TEST(AuthMiddlewareTest, ChannelScopesAreNotResolved) {
  auto inner = std::make_shared<Inner>();
  int calls = 0;
  auto app = AuthMiddleware(inner, [&](const Scope&) {
    ++calls;
    return AuthDecision::Refuse();
  });
  Scope channel = MakeScope(Scope::Type::kChannel);
  app->Create(channel);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(inner->created, 1);
}

// ---- Request ids ----

TEST(RequestIdTest, Validation) {
  EXPECT_TRUE(ValidRequestId("abc-123"));
  EXPECT_TRUE(ValidRequestId("0f8fad5b-d9cb-469f-a165-70867728950e"));
  EXPECT_TRUE(ValidRequestId("a+b/c=d_e.f:g@h"));
  EXPECT_TRUE(ValidRequestId(std::string(kMaxRequestIdSize, 'x')));
  EXPECT_FALSE(ValidRequestId(std::string(kMaxRequestIdSize + 1, 'x')));
  EXPECT_FALSE(ValidRequestId(""));
  EXPECT_FALSE(ValidRequestId("a b"));
  EXPECT_FALSE(ValidRequestId("a\nb"));
  EXPECT_FALSE(ValidRequestId("a\"b"));
  EXPECT_FALSE(ValidRequestId("caf\xC3\xA9"));
}

TEST(RequestIdTest, NewIdsAreValidAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRequestId();
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(ValidRequestId(id)) << id;
    ids.insert(std::move(id));
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(RequestIdMiddlewareTest, TakesAValidIncomingIdAndEchoesIt) {
  auto inner = std::make_shared<Inner>();
  auto app = RequestIdMiddleware(inner);
  const HttpResponseStart start =
      Respond(*app, MakeScope(Scope::Type::kHttp, {{"x-request-id", "req-42"}}));
  EXPECT_EQ(HeaderOf(start.headers, "x-request-id"), "req-42");
  ASSERT_EQ(inner->seen.size(), 1u);
  EXPECT_EQ(inner->seen[0].request_id, "req-42");
}

TEST(RequestIdMiddlewareTest, ReplacesAnInvalidOrMissingId) {
  auto inner = std::make_shared<Inner>();
  auto app = RequestIdMiddleware(inner);
  const HttpResponseStart start =
      Respond(*app, MakeScope(Scope::Type::kHttp, {{"x-request-id", "bad id\r\nset-cookie: x=1"}}));
  const auto echoed = HeaderOf(start.headers, "x-request-id");
  ASSERT_TRUE(echoed.has_value());
  EXPECT_EQ(echoed->size(), 32u);
  EXPECT_TRUE(ValidRequestId(*echoed));
  ASSERT_EQ(inner->seen.size(), 1u);
  EXPECT_EQ(inner->seen[0].request_id, *echoed);

  Respond(*app, MakeScope(Scope::Type::kHttp));
  ASSERT_EQ(inner->seen.size(), 2u);
  EXPECT_EQ(inner->seen[1].request_id.size(), 32u);
  EXPECT_NE(inner->seen[1].request_id, inner->seen[0].request_id);
}

TEST(RequestIdMiddlewareTest, UntrustedIncomingIdsAreIgnored) {
  auto inner = std::make_shared<Inner>();
  RequestIdOptions options;
  options.trust_incoming = false;
  auto app = RequestIdMiddleware(inner, options);
  Respond(*app, MakeScope(Scope::Type::kHttp, {{"x-request-id", "req-42"}}));
  ASSERT_EQ(inner->seen.size(), 1u);
  EXPECT_NE(inner->seen[0].request_id, "req-42");
  EXPECT_TRUE(ValidRequestId(inner->seen[0].request_id));
}

TEST(RequestIdMiddlewareTest, EchoedOnTheWebSocketHandshakeAndOnRefusals) {
  auto inner = std::make_shared<Inner>();
  auto app = RequestIdMiddleware(inner);
  Headers accept_headers;
  ASSERT_TRUE(Accepted(*app, MakeScope(Scope::Type::kWebSocket, {{"x-request-id", "ws-1"}}),
                       &accept_headers));
  EXPECT_EQ(HeaderOf(accept_headers, "x-request-id"), "ws-1");

  auto refusing = RequestIdMiddleware(
      AuthMiddleware(inner, [](const Scope&) { return AuthDecision::Refuse(); }));
  const HttpResponseStart start =
      Respond(*refusing, MakeScope(Scope::Type::kHttp, {{"x-request-id", "r-2"}}));
  EXPECT_EQ(start.status, 401);
  EXPECT_EQ(HeaderOf(start.headers, "x-request-id"), "r-2");
}

TEST(RequestIdMiddlewareTest, NoEchoWhenTurnedOffOrSetByTheConsumer) {
  class OwnId final : public HttpConsumer {
    Task<void> Handle() override {
      Headers headers;
      headers.emplace_back("X-Request-Id", "mine");
      co_await Respond(200, "ok", std::move(headers));
    }
  };
  auto own = RequestIdMiddleware(Make<OwnId>());
  const HttpResponseStart start = Respond(*own, MakeScope(Scope::Type::kHttp));
  ASSERT_EQ(start.headers.size(), 2u);  // content-type and the consumer's own id
  EXPECT_EQ(HeaderOf(start.headers, "X-Request-Id"), "mine");

  RequestIdOptions options;
  options.echo = false;
  auto quiet = RequestIdMiddleware(std::make_shared<Inner>(), options);
  EXPECT_EQ(HeaderOf(Respond(*quiet, MakeScope(Scope::Type::kHttp)).headers, "x-request-id"),
            std::nullopt);
}

TEST(MiddlewareTest, ConcurrentCreateIsSafe) {
  // Stateless middleware over a thread-safe resolver: many threads at once, no shared state
  // written. (Run under TSan to see it.)
  std::atomic<int> resolved = 0;
  class Counting final : public Application {
   public:
    std::unique_ptr<Consumer> Create(Scope&) override { return std::make_unique<Inner::Http>(); }
  };
  auto app = RequestIdMiddleware(OriginValidator(
      CookieMiddleware(AuthMiddleware(std::make_shared<Counting>(),
                                      [&](const Scope& scope) {
                                        ++resolved;
                                        return AuthDecision::User(
                                            std::string(scope.Cookie("u").value_or("")));
                                      })),
      OriginPolicy{{"*"}}));
  std::vector<std::thread> threads;
  std::atomic<int> wrong = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        Scope scope = MakeScope(Scope::Type::kHttp, {{"cookie", "u=" + std::to_string(t)}});
        app->Create(scope);
        if (scope.user != std::to_string(t) || scope.request_id.size() != 32) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(resolved, 2000);
  EXPECT_EQ(wrong, 0);
}

TEST(MiddlewareTest, NeedsAnInnerApplication) {
  EXPECT_THROW(CookieMiddleware(nullptr), std::invalid_argument);
  EXPECT_THROW(AuthMiddleware(std::make_shared<Inner>(), nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace sluice
