#include "common/credit.h"

#include "common/protocol.h"

namespace sluice {

v1::Window DefaultWindow() {
  v1::Window window;
  window.set_events(kDefaultWindowEvents);
  window.set_bytes(kDefaultWindowBytes);
  return window;
}

size_t EventBytes(const v1::Event& event) {
  switch (event.kind_case()) {
    case v1::Event::kHttpRequest:
      return event.http_request().body().size();
    case v1::Event::kHttpResponseBody:
      return event.http_response_body().body().size();
    case v1::Event::kWebsocketReceive:
      return event.websocket_receive().data().size();
    case v1::Event::kWebsocketSend:
      return event.websocket_send().data().size();
    case v1::Event::kLayerMessage:
      return event.layer_message().message().size();
    default:
      return 0;
  }
}

bool SpendsCredit(const v1::Event& event) {
  return event.kind_case() != v1::Event::kHttpDisconnect &&
         event.kind_case() != v1::Event::kWebsocketDisconnect;
}

SendCredit::SendCredit(const v1::Window& initial)
    : events_(initial.events()), bytes_(static_cast<int64_t>(initial.bytes())) {}

void SendCredit::Spend(size_t bytes) {
  --events_;
  bytes_ -= static_cast<int64_t>(bytes);
}

void SendCredit::Grant(const v1::Window& grant) {
  events_ += grant.events();
  bytes_ += static_cast<int64_t>(grant.bytes());
}

ReceiveWindow::ReceiveWindow(const v1::Window& window)
    : window_events_(window.events()), window_bytes_(window.bytes()), peer_(window) {}

bool ReceiveWindow::OnReceived(size_t bytes) {
  if (!peer_.CanSend()) return false;
  peer_.Spend(bytes);
  return true;
}

std::optional<v1::Window> ReceiveWindow::OnConsumed(size_t bytes) {
  ++consumed_events_;
  consumed_bytes_ += bytes;
  if (consumed_events_ * 2 < window_events_ && consumed_bytes_ * 2 < window_bytes_) {
    return std::nullopt;
  }
  v1::Window grant;
  grant.set_events(consumed_events_);
  grant.set_bytes(consumed_bytes_);
  consumed_events_ = 0;
  consumed_bytes_ = 0;
  peer_.Grant(grant);
  return grant;
}

}  // namespace sluice
