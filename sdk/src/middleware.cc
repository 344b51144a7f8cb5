#include "sluice/middleware.h"

#include <algorithm>
#include <charconv>
#include <random>
#include <stdexcept>
#include <utility>

#include "common/text.h"
#include "sluice/channel_consumer.h"
#include "sluice/http_consumer.h"
#include "sluice/websocket_consumer.h"

namespace sluice {
namespace {

bool IsHttpOrWebSocket(const Scope& scope) {
  return scope.type == Scope::Type::kHttp || scope.type == Scope::Type::kWebSocket;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    default:
      return "Refused";
  }
}

class HttpRefusal final : public HttpConsumer {
 public:
  HttpRefusal(int status, Headers headers) : status_(status), headers_(std::move(headers)) {}

 private:
  Task<void> Handle() override {
    co_await Respond(status_, std::string(ReasonPhrase(status_)) + "\n", std::move(headers_));
  }

  int status_;
  Headers headers_;
};

// Closing before accepting denies the handshake: the gateway answers 403.
class WebSocketRefusal final : public WebSocketConsumer {
  Task<void> OnConnect() override { co_await Close(); }
};

// No handlers: the message is reported unhandled and acknowledged.
class ChannelRefusal final : public ChannelConsumer {};

// ---- Origins ----

// A parsed origin or origin pattern: scheme (empty: any), host (a leading '.' in a pattern:
// the domain and its subdomains) and port (0: the scheme's default, or any for a pattern
// without scheme and port).
struct OriginParts {
  bool any = false;  // the pattern "*"
  std::string scheme;
  std::string host;
  uint16_t port = 0;
};

uint16_t DefaultPort(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

// "scheme://host[:port]" (an origin, `need_scheme`) or also "host[:port]" (a pattern).
// Lower-cases; nullopt when it does not parse.
std::optional<OriginParts> ParseOriginParts(std::string_view text, bool need_scheme) {
  OriginParts parts;
  std::string lowered = AsciiLower(text);
  std::string_view rest = lowered;
  const size_t separator = rest.find("://");
  if (separator != std::string_view::npos) {
    parts.scheme = std::string(rest.substr(0, separator));
    rest.remove_prefix(separator + 3);
    if (parts.scheme.empty() || !std::all_of(parts.scheme.begin(), parts.scheme.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || c == '+' || c == '-';
        })) {
      return std::nullopt;
    }
  } else if (need_scheme) {
    return std::nullopt;
  }
  std::string_view host;
  if (rest.starts_with('[')) {  // an IPv6 literal, kept with its brackets
    const size_t close = rest.find(']');
    if (close == std::string_view::npos || close < 2) return std::nullopt;
    host = rest.substr(0, close + 1);
    rest.remove_prefix(close + 1);
    if (!std::all_of(host.begin() + 1, host.end() - 1,
                     [](char c) { return IsHostChar(c) || c == ':'; })) {
      return std::nullopt;
    }
  } else {
    host = rest.substr(0, rest.find(':'));
    rest.remove_prefix(host.size());
    if (!std::all_of(host.begin(), host.end(), IsHostChar)) return std::nullopt;
  }
  if (host.empty() || host == ".") return std::nullopt;
  parts.host = std::string(host);
  if (!rest.empty()) {
    if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return std::nullopt;
    rest.remove_prefix(1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
    if (ec != std::errc() || end != rest.data() + rest.size() || port == 0 || port > 65535) {
      return std::nullopt;
    }
    parts.port = static_cast<uint16_t>(port);
  }
  return parts;
}

OriginParts ParsePattern(std::string_view pattern) {
  if (pattern == "*") {
    OriginParts any;
    any.any = true;
    return any;
  }
  auto parts = ParseOriginParts(pattern, /*need_scheme=*/false);
  if (!parts) {
    throw std::invalid_argument("origin pattern \"" + std::string(pattern) +
                                "\" is not *, [scheme://][.]host[:port]");
  }
  return *std::move(parts);
}

// Django's is_same_domain: ".example.com" is the domain and its subdomains.
bool SameDomain(std::string_view host, std::string_view pattern) {
  if (pattern.starts_with('.')) {
    return host == pattern.substr(1) || (host.ends_with(pattern) && host.size() > pattern.size());
  }
  return host == pattern;
}

bool Matches(const OriginParts& origin, const OriginParts& pattern) {
  if (pattern.any) return true;
  if (!SameDomain(origin.host, pattern.host)) return false;
  const uint16_t origin_port = origin.port != 0 ? origin.port : DefaultPort(origin.scheme);
  if (!pattern.scheme.empty()) {
    const uint16_t want = pattern.port != 0 ? pattern.port : DefaultPort(pattern.scheme);
    return origin.scheme == pattern.scheme && origin_port == want;
  }
  return pattern.port == 0 || origin_port == pattern.port;
}

bool Admits(std::optional<std::string_view> origin, const std::vector<OriginParts>& patterns,
            bool allow_missing) {
  if (!origin || *origin == "null") return allow_missing;
  const auto parts = ParseOriginParts(*origin, /*need_scheme=*/true);
  if (!parts) return false;
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const OriginParts& pattern) { return Matches(*parts, pattern); });
}

class OriginValidatorApp final : public Middleware {
 public:
  OriginValidatorApp(std::shared_ptr<Application> inner, const OriginPolicy& policy)
      : Middleware(std::move(inner)), allow_missing_(policy.allow_missing) {
    for (const std::string& pattern : policy.allowed) patterns_.push_back(ParsePattern(pattern));
  }

  std::unique_ptr<Consumer> Create(Scope& scope) override {
    if (scope.type != Scope::Type::kWebSocket) return inner().Create(scope);
    std::optional<std::string_view> origin;
    for (const auto& [name, value] : scope.headers) {
      if (name != "origin") continue;
      if (origin) return std::make_unique<WebSocketRefusal>();  // two: ambiguous
      origin = value;
    }
    if (!Admits(origin, patterns_, allow_missing_)) return std::make_unique<WebSocketRefusal>();
    return inner().Create(scope);
  }

 private:
  std::vector<OriginParts> patterns_;
  bool allow_missing_;
};

// ---- Cookies ----

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

class CookieApp final : public Middleware {
 public:
  using Middleware::Middleware;

  std::unique_ptr<Consumer> Create(Scope& scope) override {
    if (IsHttpOrWebSocket(scope)) {
      for (const auto& [name, value] : scope.headers) {
        if (name == "cookie") ParseCookies(value, &scope.cookies);
      }
    }
    return inner().Create(scope);
  }
};

// ---- Authentication ----

class AuthApp final : public Middleware {
 public:
  AuthApp(std::shared_ptr<Application> inner, UserResolver resolver)
      : Middleware(std::move(inner)), resolver_(std::move(resolver)) {
    if (!resolver_) throw std::invalid_argument("AuthMiddleware needs a resolver");
  }

  std::unique_ptr<Consumer> Create(Scope& scope) override {
    if (!IsHttpOrWebSocket(scope)) return inner().Create(scope);
    AuthDecision decision = resolver_(scope);
    if (decision.refused) {
      Headers headers;
      if (!decision.challenge.empty()) {
        headers.emplace_back("www-authenticate", std::move(decision.challenge));
      }
      return Refuse(scope.type, 401, std::move(headers));
    }
    scope.user = std::move(decision.user);
    return inner().Create(scope);
  }

 private:
  UserResolver resolver_;
};

// ---- Request ids ----

// The connection the inner consumer talks to: the real one, with the request id added to
// the response's (or handshake's) headers. Everything else is handed straight through.
class EchoingConnection final : public Connection {
 public:
  EchoingConnection(std::string header, std::string id)
      : header_(std::move(header)), id_(std::move(id)) {}

  void set_outer(Connection* outer) { outer_ = outer; }

  Task<Event> Receive() override { return outer_->Receive(); }
  Task<void> Send(Event event) override {
    if (auto* start = std::get_if<HttpResponseStart>(&event)) {
      AddHeader(&start->headers);
    } else if (auto* accept = std::get_if<WebSocketAccept>(&event)) {
      AddHeader(&accept->headers);
    }
    return outer_->Send(std::move(event));
  }
  Task<std::optional<Event>> ReceiveUntil(std::chrono::steady_clock::time_point deadline) override {
    return outer_->ReceiveUntil(deadline);
  }
  const std::string& ChannelName() const override { return outer_->ChannelName(); }
  Task<void> Layer(LayerCall call) override { return outer_->Layer(std::move(call)); }
  void Unhandled(const LayerMessage& message) override { outer_->Unhandled(message); }
  void SaveState(std::string state) override { outer_->SaveState(std::move(state)); }

 private:
  void AddHeader(Headers* headers) const {
    for (const auto& [name, value] : *headers) {
      if (IEquals(name, header_)) return;  // the consumer chose its own
    }
    headers->emplace_back(header_, id_);
  }

  std::string header_;
  std::string id_;
  Connection* outer_ = nullptr;
};

// Runs the inner consumer against an EchoingConnection.
class EchoingConsumer final : public Consumer {
 public:
  EchoingConsumer(std::unique_ptr<Consumer> inner, std::string header, std::string id)
      : inner_(std::move(inner)), connection_(std::move(header), std::move(id)) {}

  // Not a coroutine: hands back the inner Run's awaitable.
  Task<void> Run() override {
    connection_.set_outer(&connection());
    inner_->Bind(&scope(), &connection_);
    return inner_->Run();
  }

 private:
  std::unique_ptr<Consumer> inner_;
  EchoingConnection connection_;
};

class RequestIdApp final : public Middleware {
 public:
  RequestIdApp(std::shared_ptr<Application> inner, RequestIdOptions options)
      : Middleware(std::move(inner)), options_(std::move(options)) {
    options_.header = AsciiLower(options_.header);
    if (!IsToken(options_.header)) {
      throw std::invalid_argument("RequestIdMiddleware: not a header name: " + options_.header);
    }
  }

  std::unique_ptr<Consumer> Create(Scope& scope) override {
    if (!IsHttpOrWebSocket(scope)) return inner().Create(scope);
    std::optional<std::string_view> incoming;
    if (options_.trust_incoming) incoming = scope.Header(options_.header);
    scope.request_id =
        incoming && ValidRequestId(*incoming) ? std::string(*incoming) : NewRequestId();
    std::unique_ptr<Consumer> consumer = inner().Create(scope);
    if (!options_.echo) return consumer;
    return std::make_unique<EchoingConsumer>(std::move(consumer), options_.header,
                                             scope.request_id);
  }

 private:
  RequestIdOptions options_;
};

}  // namespace

Middleware::Middleware(std::shared_ptr<Application> inner) : inner_(std::move(inner)) {
  if (!inner_) throw std::invalid_argument("middleware needs an inner application");
}

std::unique_ptr<Consumer> Refuse(Scope::Type type, int status, Headers headers) {
  switch (type) {
    case Scope::Type::kHttp:
      return std::make_unique<HttpRefusal>(status, std::move(headers));
    case Scope::Type::kWebSocket:
      return std::make_unique<WebSocketRefusal>();
    case Scope::Type::kChannel:
      return std::make_unique<ChannelRefusal>();
  }
  throw std::logic_error("Refuse: not a scope type");
}

bool OriginAllowed(std::optional<std::string_view> origin, const OriginPolicy& policy) {
  std::vector<OriginParts> patterns;
  for (const std::string& pattern : policy.allowed) patterns.push_back(ParsePattern(pattern));
  return Admits(origin, patterns, policy.allow_missing);
}

std::shared_ptr<Application> OriginValidator(std::shared_ptr<Application> inner,
                                             const OriginPolicy& policy) {
  return std::make_shared<OriginValidatorApp>(std::move(inner), policy);
}

void ParseCookies(std::string_view header,
                  std::map<std::string, std::string, std::less<>>* cookies) {
  while (!header.empty()) {
    const size_t end = header.find(';');
    const std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = Trim(pair.substr(0, eq));
    std::string_view value = Trim(pair.substr(eq + 1));
    if (name.empty()) continue;
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    cookies->emplace(name, value);  // keeps an earlier one of the same name
  }
}

std::shared_ptr<Application> CookieMiddleware(std::shared_ptr<Application> inner) {
  return std::make_shared<CookieApp>(std::move(inner));
}

AuthDecision AuthDecision::User(Message user) {
  AuthDecision decision;
  decision.user = std::move(user);
  return decision;
}

AuthDecision AuthDecision::Refuse(std::string challenge) {
  AuthDecision decision;
  decision.refused = true;
  decision.challenge = std::move(challenge);
  return decision;
}

std::shared_ptr<Application> AuthMiddleware(std::shared_ptr<Application> inner,
                                            UserResolver resolver) {
  return std::make_shared<AuthApp>(std::move(inner), std::move(resolver));
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdSize) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("-_.:+/=@").find(c) != std::string_view::npos;
  });
}

std::string NewRequestId() {
  // One generator per thread: no lock, and seeded apart from every other thread's.
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (size_t i = 0; i < id.size(); i += 16) {
    uint64_t bits = generator();
    for (size_t j = 0; j < 16; ++j, bits >>= 4) id[i + j] = kHex[bits & 0xF];
  }
  return id;
}

std::shared_ptr<Application> RequestIdMiddleware(std::shared_ptr<Application> inner,
                                                 RequestIdOptions options) {
  return std::make_shared<RequestIdApp>(std::move(inner), std::move(options));
}

}  // namespace sluice
