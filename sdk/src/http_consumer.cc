#include "sluice/http_consumer.h"

#include <stdexcept>

#include "common/text.h"

namespace sluice {

Task<void> HttpConsumer::Run() { co_await Handle(); }

Task<std::optional<std::string>> HttpConsumer::ReadChunk() {
  while (!body_done_) {
    Event event = co_await Receive();
    if (auto* request = std::get_if<HttpRequest>(&event)) {
      body_done_ = !request->more_body;
      if (!request->body.empty()) co_return std::move(request->body);
    } else if (std::holds_alternative<HttpDisconnect>(event)) {
      throw Disconnected("client disconnected");
    } else {
      throw std::logic_error("unexpected event for HTTP: " + std::string(TypeName(event)));
    }
  }
  co_return std::nullopt;
}

Task<std::string> HttpConsumer::ReadBody(size_t max_bytes) {
  std::string body;
  while (auto chunk = co_await ReadChunk()) {
    if (body.size() + chunk->size() > max_bytes) throw std::length_error("request body too large");
    body += *chunk;
  }
  co_return body;
}

Task<void> HttpConsumer::Respond(int status, std::string body, Headers headers,
                                 std::string_view content_type) {
  bool has_type = false;
  for (const auto& header : headers) has_type |= IEquals(header.first, "content-type");
  if (!has_type && !content_type.empty()) headers.emplace_back("content-type", content_type);
  co_await StartResponse(status, std::move(headers));
  co_await SendBody(std::move(body), false);
}

Task<void> HttpConsumer::StartResponse(int status, Headers headers) {
  if (started_) throw std::logic_error("response already started");
  started_ = true;
  // Events are built in named locals: GCC 12 destroys braced temporaries inside a co_await
  // expression twice.
  Event start = HttpResponseStart{status, std::move(headers), false};
  co_await Send(std::move(start));
}

Task<void> HttpConsumer::SendBody(std::string chunk, bool more) {
  Event body = HttpResponseBody{std::move(chunk), more};
  co_await Send(std::move(body));
}

}  // namespace sluice
