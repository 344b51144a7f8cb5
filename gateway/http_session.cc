#include "gateway/http_session.h"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "common/log.h"
#include "common/protocol.h"
#include "gateway/link.h"
#include "gateway/metrics.h"
#include "gateway/scope.h"
#include "gateway/shard.h"
#include "gateway/websocket_session.h"

namespace sluice::gateway {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

// RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
bool KeepAlive(const RequestParser::Header& request) {
  bool close = false;
  bool keep = false;
  for (const auto& token : http::token_list(request[http::field::connection])) {
    close = close || beast::iequals(token, "close");
    keep = keep || beast::iequals(token, "keep-alive");
  }
  return request.version() >= 11 ? !close : keep;
}

// RFC 9110 9.2.2: sending these again has the effect of sending them once.
bool Idempotent(http::verb method) {
  switch (method) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::options:
    case http::verb::trace:
      return true;
    default:
      return false;
  }
}

v1::Event HttpDisconnect() {
  v1::Event event;
  event.mutable_http_disconnect();
  return event;
}

}  // namespace

HttpSession::HttpSession(Shard& shard, const Context& context, std::unique_ptr<Transport> transport,
                         bool over_limit)
    : ClientSession(shard, context, std::move(transport),
                    GaugeShare(context.metrics.connections, 1), {}),
      over_limit_(over_limit) {}

void HttpSession::Start() {
  // The first request's header must arrive within the header timeout of the connection.
  SetReadDeadline(context_.options.header_timeout);
  Resume();
}

v1::Event HttpSession::AbnormalDisconnect() const { return HttpDisconnect(); }

bool HttpSession::WantsRead() const {
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kHeader:
      return true;
    case Phase::kBody:
      return can_send_to_worker() || !instance_open();
    case Phase::kWaiting:
      // A read stays posted while the response is produced, so a client that leaves is
      // noticed at once; a pipelined request waits, at most one header's worth.
      return pending_bytes() < context_.options.max_header_bytes;
    case Phase::kClosing:
    case Phase::kUpgraded:
      return false;
  }
  return false;
}

size_t HttpSession::OnBytes(std::string_view data) {
  size_t used = 0;
  for (;;) {
    switch (phase_) {
      case Phase::kIdle:
        if (used == data.size()) return used;
        phase_ = Phase::kHeader;
        if (served_) SetReadDeadline(context_.options.header_timeout);
        break;
      case Phase::kHeader: {
        const size_t n = ParseHeader(data.substr(used));
        used += n;
        if (phase_ == Phase::kHeader) return used;  // more to come
        if (phase_ == Phase::kUpgraded || phase_ == Phase::kClosing) return data.size();
        break;
      }
      case Phase::kBody: {
        used += ParseBody(data.substr(used));
        if (phase_ == Phase::kClosing) return data.size();
        if (phase_ == Phase::kBody) {
          if (unsent_open_) SendBody(v1::Event());  // no body bytes yet: open the instance now
          return used;
        }
        break;
      }
      case Phase::kWaiting:
      case Phase::kClosing:
      case Phase::kUpgraded:
        return used;  // a pipelined request waits for its turn
    }
  }
}

size_t HttpSession::ParseHeader(std::string_view data) {
  if (!parser_) {
    parser_.emplace();
    parser_->max_header_bytes(context_.options.max_header_bytes);
    parser_->body_limit(context_.options.max_body_bytes);  // streamed, never held whole
  }
  beast::error_code ec;
  const size_t n = parser_->put(net::buffer(data.data(), data.size()), ec);
  if (ec == http::error::need_more) return n;
  auto& metrics = context_.metrics;
  if (ec == http::error::header_limit) {
    Answer(431, "Request Header Fields Too Large\n", &metrics.rejected_header_too_large);
  } else if (ec == http::error::body_limit) {  // a Content-Length over the limit
    Answer(413, "Content Too Large\n", &metrics.rejected_body_too_large);
  } else if (ec) {
    Answer(400, "Bad Request\n", &metrics.rejected_bad_request);
  } else {
    BeginRequest();
    if (phase_ == Phase::kUpgraded) Upgrade(*std::move(unsent_open_), data.substr(n));
  }
  return n;
}

void HttpSession::BeginRequest() {
  ClearReadDeadline();
  auto& request = parser_->header();
  const bool upgrade = beast::websocket::is_upgrade(request);
  auto& metrics = context_.metrics;
  (upgrade ? metrics.websocket_upgrades : metrics.http_requests).Inc();
  served_ = true;
  keep_alive_ = KeepAlive(request) && !draining_;
  if (over_limit_) {
    keep_alive_ = false;
    metrics.unavailable.Inc();
    return Answer(503, "Service Unavailable: too many connections\n",
                  &metrics.rejected_max_connections);
  }
  if (!addresses_) {  // once per connection, not per request: two system calls, formatting
    beast::error_code ec;
    const auto client = transport().remote_endpoint(ec);
    const auto server = transport().local_endpoint(ec);
    if (ec) return ClientGone();
    addresses_.emplace(ToAddress(client), ToAddress(server));
  }
  auto scope = BuildScope(request, parser_->fields(), upgrade, addresses_->first,
                          addresses_->second, context_.options.root_path);
  if (!scope.ok()) return Answer(400, "Bad Request\n", &metrics.rejected_bad_request);
  if (upgrade) {
    unsent_open_ = *std::move(scope);
    phase_ = Phase::kUpgraded;
    return;
  }
  auto link = context_.picker.Pick();
  if (!link) {
    metrics.rejected_no_worker.Inc();
    metrics.unavailable.Inc();
    return Answer(503, "Service Unavailable: no worker has room\n", nullptr);
  }
  response_.emplace(request.method() == http::verb::head, request.version() == 10, keep_alive_);
  BindInstance(std::move(link));
  resendable_ = true;
  idempotent_ = Idempotent(request.method());
  retries_ = 0;
  if (parser_->is_done()) {  // no body: the request is complete in one envelope
    v1::Event event;
    event.mutable_http_request();
    phase_ = Phase::kWaiting;                 // parser_ stays: it holds the header for a retry
    OpenInstance(*std::move(scope), &event);  // false: OnLinkLost follows
    return;
  }
  unsent_open_ = *std::move(scope);
  phase_ = Phase::kBody;
  parser_->eager(true);
  if (request.version() >= 11 && beast::iequals(request[http::field::expect], "100-continue")) {
    Queue({.head = "HTTP/1.1 100 Continue\r\n\r\n"});
  }
}

size_t HttpSession::ParseBody(std::string_view data) {
  size_t used = 0;
  while (used < data.size()) {
    if (!instance_open()) {
      // The instance is gone (it ended without waiting for the body): drop the body.
      phase_ = Phase::kClosing;
      CloseGracefully();
      return data.size();
    }
    if (!can_send_to_worker()) {
      // The consumer is behind: stop reading; TCP pushes back on the client. The body
      // deadline does not run meanwhile: the client is not the one who is late.
      if (!read_stalled_) context_.metrics.credit_stalls_to_worker.Inc();
      read_stalled_ = true;
      ClearReadDeadline();
      return used;
    }
    read_stalled_ = false;
    v1::Event event;
    std::string* piece = event.mutable_http_request()->mutable_body();
    parser_->set_body_sink(piece, kHttpChunkBytes);
    beast::error_code ec;
    used += parser_->put(net::buffer(data.data() + used, data.size() - used), ec);
    if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
    if (ec) {
      BodyError(ec);
      return data.size();
    }
    const bool done = parser_->is_done();
    if (piece->empty() && !done) break;  // a partial chunk header: wait for more
    event.mutable_http_request()->set_more_body(!done);
    SendBody(std::move(event));
    if (done) {
      if (!resendable_) parser_.reset();
      phase_ = Phase::kWaiting;
      ClearReadDeadline();
      return used;
    }
  }
  SetReadDeadline(context_.options.body_timeout);  // waiting for the client
  return used;
}

void HttpSession::SendBody(v1::Event&& event) {
  if (!instance_open()) return;
  if (unsent_open_) {
    // The Open carries the first piece; a request whose body was read whole is one envelope.
    const bool has_event = event.has_http_request();
    if (resendable_ && has_event && !event.http_request().more_body()) {
      retry_body_ = event.http_request().body();  // whole: kept for a retry
    } else {
      resendable_ = false;
    }
    v1::Scope scope = *std::move(unsent_open_);
    unsent_open_.reset();
    OpenInstance(std::move(scope), has_event ? &event : nullptr);
    return;
  }
  resendable_ = false;
  SendToWorker(std::move(event));
}

void HttpSession::BodyError(beast::error_code ec) {
  TellDisconnected(HttpDisconnect());  // for the instance, the client is gone
  if (ec == http::error::body_limit) {
    Answer(413, "Content Too Large\n", &context_.metrics.rejected_body_too_large);
  } else {
    Answer(400, "Bad Request\n", &context_.metrics.rejected_bad_request);
  }
}

void HttpSession::Upgrade(v1::Scope&& scope, std::string_view rest) {
  const WebSocketSession::Request request = std::move(parser_->header());
  parser_.reset();
  Handover handover = HandOver();
  std::make_shared<WebSocketSession>(shard_, context_, std::move(handover.transport),
                                     std::move(handover.connection), std::string(rest))
      ->Start(request, std::move(scope));
}

void HttpSession::HandleEvent(v1::Event& event) {
  switch (event.kind_case()) {
    case v1::Event::kHttpResponseStart: {
      if (absl::Status status = response_->Start(std::move(*event.mutable_http_response_start()));
          !status.ok()) {
        return HandleWorkerError(std::string(status.message()));
      }
      CreditBack(0);  // nothing to write yet: the head goes with the first body
      break;
    }
    case v1::Event::kHttpResponseBody: {
      auto& body = *event.mutable_http_response_body();
      const bool was_written = response_->head_written();
      const uint64_t bytes = body.body().size();
      auto piece = response_->Body(
          Take(body, &v1::HttpResponseBody::body, &v1::HttpResponseBody::mutable_body),
          body.more_body(), phase_ != Phase::kBody);
      if (!piece.ok()) {
        if (!was_written) return HandleWorkerError(std::string(piece.status().message()));
        SLUICE_LOG(kError, "gateway") << "response cut: " << piece.status().message();
        context_.metrics.app_errors.Inc();
        return ClientGone();
      }
      const bool last = !body.more_body();
      if (last) close_after_ = !response_->keep_alive() || draining_;
      if (!Queue({.head = std::move(piece->head),
                  .body = std::move(piece->body),
                  .tail = piece->tail,
                  .credit_bytes = bytes,
                  .credit = true,
                  .last = last})) {
        return HandleWorkerError("client-bound queue overflow");
      }
      break;
    }
    default:
      HandleWorkerError(std::string("event not valid for HTTP: ") +
                        std::to_string(event.kind_case()));
  }
}

void HttpSession::HandleClose(const v1::Close& close) {
  if (response_ && response_->state() == ResponseFramer::State::kComplete) return;
  if (response_ && response_->head_written()) {
    // A started response the application never finished: all we can do is cut it.
    SLUICE_LOG(kWarning, "gateway")
        << "response cut: the application ended mid-response (" << close.detail() << ")";
    context_.metrics.app_errors.Inc();
    return ClientGone();
  }
  auto& metrics = context_.metrics;
  if (close.reason() == v1::Close::REASON_REJECTED) {
    // The worker filled up or began draining as the Open crossed: no instance saw the request.
    if (Retry(/*refused=*/true)) return;
    metrics.unavailable.Inc();
    return Answer(503, "Service Unavailable: no worker has room\n", &metrics.rejected_worker_full);
  }
  if (close.reason() == v1::Close::REASON_DONE) {
    SLUICE_LOG(kWarning, "gateway") << "the application returned without a response";
  }
  Answer(500, "Internal Server Error\n", &metrics.app_errors);
}

void HttpSession::HandleWorkerError(std::string_view why) {
  SLUICE_LOG(kError, "gateway") << "HTTP connection: the worker broke the protocol: " << why;
  context_.metrics.worker_protocol_errors.Inc();
  TellDisconnected(HttpDisconnect());
  Answer(500, "Internal Server Error\n", &context_.metrics.app_errors);
}

void HttpSession::HandleLinkLost() {
  if (response_ && response_->state() == ResponseFramer::State::kComplete) return;
  if (response_ && response_->head_written()) return ClientGone();
  if (Retry(/*refused=*/false)) return;
  context_.metrics.http_not_retried.Inc();
  Answer(502, "Bad Gateway: the worker went away and the request could not be retried\n", nullptr);
}

bool HttpSession::Retry(bool refused) {
  if (!resendable_ || !(refused || idempotent_) || phase_ != Phase::kWaiting || !parser_ ||
      retries_ >= kMaxRetries) {
    return false;
  }
  const auto& request = parser_->header();
  auto scope = BuildScope(request, parser_->fields(), /*websocket=*/false, addresses_->first,
                          addresses_->second, context_.options.root_path);
  if (!scope.ok()) return false;  // cannot happen: it was built from the same header before
  std::shared_ptr<Link> link = context_.picker.Pick();
  if (!link) return false;
  auto& metrics = context_.metrics;
  ++retries_;
  metrics.http_retried.Inc();
  response_.emplace(request.method() == http::verb::head, request.version() == 10,
                    keep_alive_ && !draining_);
  BindInstance(std::move(link));
  v1::Event event;
  event.mutable_http_request()->set_body(retry_body_);
  OpenInstance(*std::move(scope), &event);  // false: OnLinkLost follows, and retries again
  return true;
}

void HttpSession::Answer(unsigned status, std::string_view body, Counter* reason) {
  if (reason) reason->Inc();
  if (response_ && response_->head_written()) return ClientGone();  // too late for an answer
  DropInstance();
  unsent_open_.reset();
  response_.reset();
  // The connection stays open only if the request was read whole.
  const bool request_read = parser_ ? parser_->is_done() : phase_ == Phase::kWaiting;
  const bool keep = keep_alive_ && request_read && !draining_;
  parser_.reset();
  resendable_ = false;
  std::string().swap(retry_body_);
  close_after_ = !keep;
  phase_ = keep ? Phase::kWaiting : Phase::kClosing;
  Queue({.head = CannedResponse(status, body, keep, status == 503), .last = true});
}

void HttpSession::OnWritten(const Chunk& chunk) {
  if (chunk.last) EndResponse();
}

void HttpSession::EndResponse() {
  // The worker tells the instance itself that its response is complete (http.disconnect on
  // its next receive), so nothing more goes to it.
  DropInstance();
  response_.reset();
  unsent_open_.reset();
  parser_.reset();  // kept for a retry until now
  resendable_ = false;
  std::string().swap(retry_body_);
  if (close_after_ || draining_ || phase_ != Phase::kWaiting) {
    // Not keep-alive, or answered before the request was read whole: close after draining
    // what the client still sends.
    phase_ = Phase::kClosing;
    parser_.reset();
    return CloseGracefully();
  }
  phase_ = Phase::kIdle;
  close_after_ = false;
  SetReadDeadline(context_.options.http_idle_timeout);
  Resume();  // a pipelined request may be waiting
}

void HttpSession::OnReadEnd(boost::system::error_code /*ec*/) { ClientGone(); }

void HttpSession::ClientGone() {
  TellDisconnected(HttpDisconnect());
  CloseNow();
}

void HttpSession::OnReadDeadline() {
  auto& metrics = context_.metrics;
  switch (phase_) {
    case Phase::kIdle:
      (served_ ? metrics.limit_idle_timeout : metrics.limit_header_timeout).Inc();
      return CloseNow();
    case Phase::kHeader:
      metrics.limit_header_timeout.Inc();
      return CloseNow();  // slowloris: no answer
    case Phase::kBody:
      SLUICE_LOG(kInfo, "gateway") << "request body made no progress for "
                                   << context_.options.body_timeout.count() << " s; answering 408";
      TellDisconnected(HttpDisconnect());
      return Answer(408, "Request Timeout\n", &metrics.limit_body_timeout);
    case Phase::kWaiting:
    case Phase::kClosing:
    case Phase::kUpgraded:
      return;
  }
}

void HttpSession::OnSlowClient() {
  context_.metrics.slow_client_closes.Inc();
  SLUICE_LOG(kInfo, "gateway") << "HTTP client took in nothing for "
                               << context_.options.slow_client_timeout.count()
                               << " s of a pending response; closing it";
  ClientGone();
}

void HttpSession::Drain() {
  if (draining_ || closed()) return;
  draining_ = true;
  switch (phase_) {
    case Phase::kIdle:
    case Phase::kHeader:
      // No request in progress: nothing to finish.
      context_.metrics.drained.Inc();
      phase_ = Phase::kClosing;
      return CloseGracefully();
    case Phase::kBody:
    case Phase::kWaiting:
      // Finish the request; its response says connection: close if not yet written.
      context_.metrics.drained.Inc();
      if (response_) response_->DisableKeepAlive();
      keep_alive_ = false;
      return;
    case Phase::kClosing:
    case Phase::kUpgraded:
      return;
  }
}

}  // namespace sluice::gateway
