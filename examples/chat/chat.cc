#include "chat.h"

#include <map>
#include <string>

namespace chat {
namespace {

// The users and their tokens: a stand-in for a session store or a token service.
const std::map<std::string, std::string, std::less<>> kUsers = {
    {"alice-token", "alice"},
    {"bob-token", "bob"},
};

sluice::AuthDecision ResolveUser(const sluice::Scope& scope) {
  std::optional<std::string> token = scope.Query("token");
  if (!token) {
    if (auto cookie = scope.Cookie("token")) token = std::string(*cookie);
  }
  if (!token) return sluice::AuthDecision::Refuse();
  const auto user = kUsers.find(*token);
  if (user == kUsers.end()) return sluice::AuthDecision::Refuse();
  return sluice::AuthDecision::User({{"name", user->second}});
}

class ChatConsumer final : public sluice::WebSocketConsumer {
 public:
  ChatConsumer() {
    On("chat.message", [this](const sluice::Message& message) -> sluice::Task<void> {
      co_await SendText(message.value("from", std::string()) + ": " +
                        message.value("text", std::string()));
    });
  }

 private:
  std::vector<std::string> Groups() const override {
    return {"chat_" + std::string(scope().Param("room").value_or("lobby"))};
  }

  sluice::Task<void> OnText(std::string text) override {
    sluice::Message message = {{"type", "chat.message"},
                               {"from", scope().user.value("name", std::string())},
                               {"text", std::move(text)}};
    co_await GroupSend(Groups().front(), message);
  }
};

}  // namespace

std::shared_ptr<sluice::Application> MakeApp() {
  auto router = std::make_shared<sluice::Router>();
  router->WebSocket("/ws/chat/{room:slug}", sluice::Make<ChatConsumer>());
  return sluice::CookieMiddleware(sluice::AuthMiddleware(router, ResolveUser));
}

}  // namespace chat
