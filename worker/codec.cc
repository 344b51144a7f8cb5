#include "worker/codec.h"

#include "common/inbound.h"

namespace sluice::worker {
namespace {

Headers FromProto(google::protobuf::RepeatedPtrField<v1::Header>* headers) {
  Headers out;
  out.reserve(headers->size());
  for (v1::Header& header : *headers) {
    out.emplace_back(Take(header, &v1::Header::name, &v1::Header::mutable_name),
                     Take(header, &v1::Header::value, &v1::Header::mutable_value));
  }
  return out;
}

void ToProto(Headers&& headers, google::protobuf::RepeatedPtrField<v1::Header>* out) {
  out->Reserve(static_cast<int>(headers.size()));
  for (auto& [name, value] : headers) {
    v1::Header* header = out->Add();
    header->set_name(std::move(name));
    header->set_value(std::move(value));
  }
}

std::optional<Address> FromProto(const v1::Scope& scope, bool client) {
  if (client ? !scope.has_client() : !scope.has_server()) return std::nullopt;
  const v1::Address& address = client ? scope.client() : scope.server();
  return Address{address.host(), static_cast<uint16_t>(address.port())};
}

}  // namespace

Scope FromProto(v1::Scope&& scope) {
  Scope out;
  switch (scope.type()) {
    case v1::Scope::TYPE_WEBSOCKET:
      out.type = Scope::Type::kWebSocket;
      break;
    case v1::Scope::TYPE_CHANNEL:
      out.type = Scope::Type::kChannel;
      break;
    default:
      out.type = Scope::Type::kHttp;
  }
  out.http_version = Take(scope, &v1::Scope::http_version, &v1::Scope::mutable_http_version);
  out.method = Take(scope, &v1::Scope::method, &v1::Scope::mutable_method);
  out.scheme = Take(scope, &v1::Scope::scheme, &v1::Scope::mutable_scheme);
  out.path = Take(scope, &v1::Scope::path, &v1::Scope::mutable_path);
  out.raw_path = Take(scope, &v1::Scope::raw_path, &v1::Scope::mutable_raw_path);
  out.query_string = Take(scope, &v1::Scope::query_string, &v1::Scope::mutable_query_string);
  out.root_path = Take(scope, &v1::Scope::root_path, &v1::Scope::mutable_root_path);
  out.headers = FromProto(scope.mutable_headers());
  out.client = FromProto(scope, /*client=*/true);
  out.server = FromProto(scope, /*client=*/false);
  for (std::string& protocol : *scope.mutable_subprotocols()) {
    out.subprotocols.push_back(std::move(protocol));
  }
  return out;
}

absl::StatusOr<Event> FromProto(v1::Event&& event) {
  switch (event.kind_case()) {
    case v1::Event::kHttpRequest: {
      auto* request = event.mutable_http_request();
      return HttpRequest{Take(*request, &v1::HttpRequest::body, &v1::HttpRequest::mutable_body),
                         request->more_body()};
    }
    case v1::Event::kHttpDisconnect:
      return HttpDisconnect{};
    case v1::Event::kWebsocketConnect:
      return WebSocketConnect{};
    case v1::Event::kWebsocketResume: {
      auto* resumed = event.mutable_websocket_resume();
      WebSocketResume out;
      if (resumed->saved()) {
        out.state =
            Take(*resumed, &v1::WebSocketResume::state, &v1::WebSocketResume::mutable_state);
      }
      out.moves = static_cast<int>(resumed->moves());
      return out;
    }
    case v1::Event::kWebsocketReceive: {
      WebSocketReceive out;
      out.data = Take(*event.mutable_websocket_receive(), &v1::WebSocketMessage::data,
                      &v1::WebSocketMessage::mutable_data);
      out.binary = event.websocket_receive().binary();
      return out;
    }
    case v1::Event::kWebsocketDisconnect: {
      auto* gone = event.mutable_websocket_disconnect();
      return WebSocketDisconnect{
          static_cast<int>(gone->code()),
          Take(*gone, &v1::WebSocketClose::reason, &v1::WebSocketClose::mutable_reason)};
    }
    case v1::Event::kLayerMessage: {
      LayerMessage out;
      out.message = Message::from_msgpack(event.layer_message().message(), /*strict=*/true,
                                          /*allow_exceptions=*/false);
      if (!out.message.is_object()) {
        return absl::InvalidArgumentError("layer_message is not a msgpack map");
      }
      out.delivery_id = Take(*event.mutable_layer_message(), &v1::LayerMessage::delivery_id,
                             &v1::LayerMessage::mutable_delivery_id);
      return out;
    }
    default:
      return absl::InvalidArgumentError("event kind not sent by gateways: " +
                                        std::to_string(event.kind_case()));
  }
}

v1::Event ToProto(Event&& event) {
  v1::Event out;
  struct Visitor {
    v1::Event* out;
    void operator()(HttpRequest& e) const {
      auto* m = out->mutable_http_request();
      m->set_body(std::move(e.body));
      m->set_more_body(e.more_body);
    }
    void operator()(HttpDisconnect&) const { out->mutable_http_disconnect(); }
    void operator()(HttpResponseStart& e) const {
      auto* m = out->mutable_http_response_start();
      m->set_status(static_cast<uint32_t>(e.status));
      ToProto(std::move(e.headers), m->mutable_headers());
      m->set_trailers(e.trailers);
    }
    void operator()(HttpResponseBody& e) const {
      auto* m = out->mutable_http_response_body();
      m->set_body(std::move(e.body));
      m->set_more_body(e.more_body);
    }
    void operator()(WebSocketConnect&) const { out->mutable_websocket_connect(); }
    void operator()(WebSocketResume& e) const {
      auto* m = out->mutable_websocket_resume();
      if (e.state) {
        m->set_state(std::move(*e.state));
        m->set_saved(true);
      }
      m->set_moves(static_cast<uint32_t>(e.moves));
    }
    void operator()(WebSocketAccept& e) const {
      auto* m = out->mutable_websocket_accept();
      m->set_subprotocol(std::move(e.subprotocol));
      ToProto(std::move(e.headers), m->mutable_headers());
    }
    void operator()(WebSocketReceive& e) const {
      auto* m = out->mutable_websocket_receive();
      m->set_data(std::move(e.data));
      m->set_binary(e.binary);
    }
    void operator()(WebSocketSend& e) const {
      auto* m = out->mutable_websocket_send();
      m->set_data(std::move(e.data));
      m->set_binary(e.binary);
    }
    void operator()(WebSocketClose& e) const {
      auto* m = out->mutable_websocket_close();
      m->set_code(static_cast<uint32_t>(e.code));
      m->set_reason(std::move(e.reason));
    }
    void operator()(WebSocketDisconnect& e) const {
      auto* m = out->mutable_websocket_disconnect();
      m->set_code(static_cast<uint32_t>(e.code));
      m->set_reason(std::move(e.reason));
    }
    void operator()(LayerMessage& e) const {
      const std::vector<uint8_t> bytes = Message::to_msgpack(e.message);
      auto* m = out->mutable_layer_message();
      m->set_message(bytes.data(), bytes.size());
      m->set_delivery_id(std::move(e.delivery_id));
    }
  };
  std::visit(Visitor{&out}, event);
  return out;
}

}  // namespace sluice::worker
