#include "gateway/http_session.h"

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "common/log.h"
#include "common/protocol.h"
#include "gateway/metrics.h"
#include "gateway/response.h"
#include "gateway/scope.h"
#include "gateway/shard.h"
#include "gateway/websocket_session.h"
#include "gateway/worker_pool.h"

namespace sluice::gateway {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

// A malformed request, as opposed to a client that left or went quiet.
bool IsParseError(beast::error_code ec) {
  return ec.category() == make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

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

}  // namespace

HttpSession::HttpSession(Shard& shard, const Context& context, net::ip::tcp::socket socket,
                         bool over_limit)
    : shard_(shard),
      context_(context),
      connection_(context.metrics.connections, 1),
      queued_bytes_(context.metrics.queued_bytes),
      over_limit_(over_limit),
      stream_(std::move(socket)) {}

std::shared_ptr<HttpSession> HttpSession::self() {
  return std::static_pointer_cast<HttpSession>(shared_from_this());
}

void HttpSession::Start() { ReadHeader(); }

void HttpSession::ReadHeader() {
  if (served_ && buffer_.size() == 0) return AwaitNextRequest();
  parser_.emplace();
  parser_->header_limit(context_.options.max_header_bytes);
  parser_->body_limit(context_.options.max_body_bytes);  // streamed, never held whole
  stream_.expires_after(context_.options.header_timeout);
  reading_ = true;
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = self()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void HttpSession::AwaitNextRequest() {
  // Between keep-alive requests: the idle timeout runs until the first byte, then the
  // header timeout.
  stream_.expires_after(context_.options.http_idle_timeout);
  reading_ = true;
  stream_.async_read_some(buffer_.prepare(1024), [self = self()](beast::error_code ec, size_t n) {
    self->reading_ = false;
    if (self->dead_) return;
    if (ec) {
      if (ec == beast::error::timeout) self->context_.metrics.limit_idle_timeout.Inc();
      return self->CloseSocket();
    }
    self->buffer_.commit(n);
    self->ReadHeader();
  });
}

void HttpSession::Watch() {
  // The request is read whole; its response may stream for long (SSE). A read stays posted
  // so a client that leaves is noticed at once. Bytes of a pipelined request wait in buffer_
  // for their turn (reading stops once some arrive). EndRequest cancels it.
  stream_.expires_never();
  reading_ = true;
  stream_.async_read_some(buffer_.prepare(1024), [self = self()](beast::error_code ec, size_t n) {
    self->reading_ = false;
    if (self->dead_) return;
    if (ec == net::error::operation_aborted) {
      if (!self->instance_) self->ReadHeader();  // cancelled by EndRequest: the next request
      return;
    }
    if (ec) return self->ClientGone();
    self->buffer_.commit(n);
    if (!self->instance_) self->ReadHeader();
  });
}

void HttpSession::OnHeader(beast::error_code ec) {
  reading_ = false;
  if (dead_) return;
  if (ec) {
    auto& metrics = context_.metrics;
    if (ec == http::error::header_limit) {
      Refuse(431, "Request Header Fields Too Large\n", metrics.rejected_header_too_large);
    } else if (ec == http::error::body_limit) {  // a Content-Length over the limit
      Refuse(413, "Content Too Large\n", metrics.rejected_body_too_large);
    } else if (IsParseError(ec)) {
      Refuse(400, "Bad Request\n", metrics.rejected_bad_request);
    } else {
      if (ec == beast::error::timeout) metrics.limit_header_timeout.Inc();
      CloseSocket();  // the client left, or was too slow to send a header
    }
    return;
  }
  BeginRequest();
}

void HttpSession::BeginRequest() {
  stream_.expires_never();
  auto& request = parser_->header();
  const bool upgrade = beast::websocket::is_upgrade(request);
  auto& metrics = context_.metrics;
  (upgrade ? metrics.websocket_upgrades : metrics.http_requests).Inc();
  served_ = true;
  if (over_limit_) {
    metrics.unavailable.Inc();
    return Refuse(503, "Service Unavailable: too many connections\n",
                  metrics.rejected_max_connections);
  }
  keep_alive_ = KeepAlive(request);
  head_request_ = request.method() == http::verb::head;
  http10_ = request.version() == 10;
  body_done_ = parser_->is_done();
  beast::error_code ec;
  const auto client = stream_.socket().remote_endpoint(ec);
  const auto server = stream_.socket().local_endpoint(ec);
  if (ec) {
    CloseSocket();
    return;
  }
  auto scope =
      BuildScope(request, parser_->fields(), upgrade, client, server, context_.options.root_path);
  if (!scope.ok()) return Refuse(400, "Bad Request\n", metrics.rejected_bad_request);
  if (upgrade) {
    dead_ = true;  // the socket moves to the WebSocket session
    std::make_shared<WebSocketSession>(shard_, context_, stream_.release_socket(),
                                       WebSocketSession::Request(std::move(request)),
                                       std::move(connection_))
        ->Start(*std::move(scope));
    return;
  }
  auto link = context_.pool.Pick();
  if (!link) {
    metrics.rejected_no_worker.Inc();
    metrics.unavailable.Inc();
    keep_alive_ = keep_alive_ && body_done_;
    QueueReply(503, "Service Unavailable: no worker has room\n", /*retry_after=*/true);
    return;
  }
  instance_.emplace(shard_.Register(shared_from_this(), link.get()), link,
                    context_.options.receive_window);
  if (!instance_->Open(*std::move(scope))) return;  // the link is ending: OnLinkLost follows

  if (body_done_) {
    v1::Event event;
    event.mutable_http_request();
    instance_->Send(std::move(event));
    Watch();
    return;
  }
  const auto expect = request[http::field::expect];
  if (!http10_ && beast::iequals(expect, "100-continue")) {
    writes_.push_back({std::string("HTTP/1.1 100 Continue\r\n\r\n"), {}, {}, 0, false, false});
    Write();
  }
  ReadBody();
}

void HttpSession::ReadBody() {
  if (reading_ || body_done_ || dead_ || !instance_) return;
  if (!instance_->CanSend()) {
    // The consumer is behind: stop reading; TCP pushes back on the client.
    if (!read_stalled_) context_.metrics.credit_stalls_to_worker.Inc();
    read_stalled_ = true;
    return;
  }
  read_stalled_ = false;
  if (!chunk_) chunk_ = std::make_unique<char[]>(kHttpChunkBytes);
  parser_->set_body_buffer(chunk_.get(), kHttpChunkBytes);
  reading_ = true;
  http::async_read_some(stream_, buffer_, *parser_,
                        [self = self()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void HttpSession::OnBody(beast::error_code ec) {
  reading_ = false;
  if (dead_ || !instance_) return;
  if (ec == http::error::need_buffer) ec = {};
  if (ec == http::error::body_limit) {
    TellDisconnected();  // a chunked body over the limit: for the instance, the client left
    if (!head_written_) {
      return Refuse(413, "Content Too Large\n", context_.metrics.rejected_body_too_large);
    }
    context_.metrics.rejected_body_too_large.Inc();
    return CloseSocket();  // the response has started: cutting it is all that is left
  }
  if (ec) {
    ClientGone();
    return;
  }
  const size_t n = kHttpChunkBytes - parser_->body_left();
  body_done_ = parser_->is_done();
  if (n > 0 || body_done_) {
    v1::Event event;
    auto* request = event.mutable_http_request();
    request->set_body(chunk_.get(), n);
    request->set_more_body(!body_done_);
    instance_->Send(std::move(event));
  }
  if (body_done_) {
    chunk_.reset();
    Watch();
  } else {
    ReadBody();
  }
}

void HttpSession::TellDisconnected() {
  if (!instance_ || worker_done_) return;
  worker_done_ = true;
  v1::Event event;
  event.mutable_http_disconnect();
  instance_->Send(std::move(event));
}

void HttpSession::OnEnvelope(v1::Envelope& envelope) {
  if (dead_ || !instance_ || instance_->id() != envelope.connection_id()) return;
  switch (envelope.body_case()) {
    case v1::Envelope::kCredit:
      instance_->OnCredit(envelope.credit());
      ReadBody();
      break;
    case v1::Envelope::kEvent:
      HandleEvent(*envelope.mutable_event());
      break;
    case v1::Envelope::kClose:
      HandleClose(envelope.close());
      break;
    default:
      Abort("unexpected envelope from the worker");
  }
}

void HttpSession::HandleEvent(v1::Event& event) {
  if (!instance_->OnReceived(event)) return Abort("the worker overran its credit");
  if (instance_->worker_blocked() && !stall_.armed()) {
    context_.metrics.credit_stalls_to_client.Inc();
    stall_.Arm(stream_.get_executor(), context_.options.slow_client_timeout,
               [self = self()] { self->SlowClient(); });
  }
  switch (event.kind_case()) {
    case v1::Event::kHttpResponseStart: {
      if (start_ || head_written_) return Abort("second http.response.start");
      auto& start = *event.mutable_http_response_start();
      if (start.status() < 200 || start.status() > 999) return Abort("bad status");
      if (!ValidHeaders(start.headers())) return Abort("invalid response header");
      start_ = std::move(start);
      Grant(0);
      break;
    }
    case v1::Event::kHttpResponseBody: {
      if (!start_ && !head_written_) return Abort("http.response.body before start");
      if (last_queued_) return Abort("http.response.body after the last one");
      auto& body = *event.mutable_http_response_body();
      QueueBody(std::move(*body.mutable_body()), body.more_body());
      break;
    }
    default:
      Abort("event not valid for HTTP");
  }
}

void HttpSession::QueueBody(std::string&& body, bool more) {
  PendingWrite write;
  write.event = true;
  write.event_bytes = body.size();
  write.last = !more;
  last_queued_ = !more;
  if (!head_written_) {
    const v1::HttpResponseStart& start = *start_;
    const unsigned status = start.status();
    const auto declared = DeclaredLength(start.headers());
    if (!declared.ok()) return Abort("invalid content-length");
    uint64_t length = 0;
    if (head_request_ || status == 204 || status == 304) {
      framing_ = Framing::kNoBody;
    } else if (declared->has_value()) {
      framing_ = Framing::kLength;
      remaining_ = **declared;
    } else if (!more) {
      framing_ = Framing::kLength;
      remaining_ = length = body.size();
    } else if (http10_) {
      framing_ = Framing::kUntilClose;
      keep_alive_ = false;
    } else {
      framing_ = Framing::kChunked;
    }
    write.head = ResponseHead(start, http10_, keep_alive_, framing_ == Framing::kChunked,
                              framing_ == Framing::kLength && !declared->has_value()
                                  ? std::optional<uint64_t>(length)
                                  : std::nullopt);
    head_written_ = true;
    start_.reset();
  }
  switch (framing_) {
    case Framing::kNoBody:
      break;
    case Framing::kLength:
      if (body.size() > remaining_) return Abort("body longer than its content-length");
      remaining_ -= body.size();
      if (!more && remaining_ > 0) close_after_ = true;  // the client sees a short body
      write.body = std::move(body);
      break;
    case Framing::kChunked:
      if (!body.empty()) {
        write.head += ChunkHeader(body.size());
        write.body = std::move(body);
        write.tail = more ? "\r\n" : "\r\n0\r\n\r\n";
      } else if (!more) {
        write.tail = "0\r\n\r\n";
      }
      break;
    case Framing::kUntilClose:
      write.body = std::move(body);
      if (!more) close_after_ = true;
      break;
  }
  queued_bytes_.Add(static_cast<int64_t>(write.event_bytes));
  writes_.push_back(std::move(write));
  Write();
}

void HttpSession::Refuse(unsigned status, std::string_view body, Counter& reason) {
  reason.Inc();
  keep_alive_ = false;
  QueueReply(status, body, /*retry_after=*/status == 503);
}

void HttpSession::QueueReply(unsigned status, std::string_view body, bool retry_after) {
  writes_.push_back(
      {CannedResponse(status, body, keep_alive_, retry_after), {}, {}, 0, false, true});
  head_written_ = true;
  last_queued_ = true;
  Write();
}

void HttpSession::Grant(size_t bytes) {
  if (!instance_) return;
  if (worker_done_) {
    stall_.Disarm();  // the instance has ended: nobody waits for this credit
    return;
  }
  if (instance_->Consumed(bytes)) stall_.Disarm();
}

void HttpSession::Write() {
  if (writing_ || dead_ || write_head_ == writes_.size()) return;
  const PendingWrite& w = writes_[write_head_];
  writing_ = true;
  const std::array<net::const_buffer, 3> buffers{net::buffer(w.head), net::buffer(w.body),
                                                 net::buffer(w.tail)};
  net::async_write(stream_, buffers,
                   [self = self()](beast::error_code ec, size_t) { self->OnWrite(ec); });
}

void HttpSession::OnWrite(beast::error_code ec) {
  writing_ = false;
  if (dead_) return;
  if (ec) {
    ClientGone();
    return;
  }
  const PendingWrite written = std::move(writes_[write_head_++]);
  queued_bytes_.Sub(static_cast<int64_t>(written.event_bytes));
  if (write_head_ == writes_.size()) {
    writes_.clear();
    write_head_ = 0;
  }
  if (written.event) Grant(written.event_bytes);
  if (worker_done_ && !written.last) ArmWriteDeadline();  // progress: start again
  if (written.last) {
    EndResponse();
  } else {
    Write();
  }
}

void HttpSession::EndResponse() {
  TellDisconnected();  // ASGI: once the response is sent, receive() gives http.disconnect
  EndRequest();
}

void HttpSession::DropInstance() {
  stall_.Disarm();
  if (!instance_) return;
  shard_.Unregister(instance_->id());
  instance_.reset();
}

void HttpSession::EndRequest() {
  DropInstance();
  chunk_.reset();
  start_.reset();
  head_written_ = last_queued_ = worker_done_ = false;
  if (close_after_ || !keep_alive_ || !body_done_) {
    CloseSocket();
  } else if (reading_) {
    stream_.socket().cancel();  // the Watch() read; its handler starts the next request
  } else {
    ReadHeader();
  }
}

void HttpSession::HandleClose(const v1::Close& close) {
  worker_done_ = true;
  stall_.Disarm();
  if (last_queued_) return ArmWriteDeadline();  // the response is complete once written
  if (head_written_) {
    // A started response the application never finished: all we can do is cut it.
    SLUICE_LOG(kWarning, "gateway")
        << "response cut: the application ended mid-response (" << close.detail() << ")";
    CloseSocket();
    return;
  }
  keep_alive_ = keep_alive_ && body_done_;
  if (close.reason() == v1::Close::REASON_REJECTED) {
    context_.metrics.rejected_worker_full.Inc();
    context_.metrics.unavailable.Inc();
    QueueReply(503, "Service Unavailable: no worker has room\n", /*retry_after=*/true);
    return;
  }
  if (close.reason() == v1::Close::REASON_DONE) {
    SLUICE_LOG(kWarning, "gateway") << "the application returned without a response";
  }
  context_.metrics.app_errors.Inc();
  QueueReply(500, "Internal Server Error\n", false);
}

void HttpSession::Abort(std::string_view why) {
  SLUICE_LOG(kError, "gateway") << "connection " << instance_->id() << ": " << why;
  context_.metrics.app_errors.Inc();
  TellDisconnected();
  if (head_written_) return CloseSocket();
  keep_alive_ = false;
  start_.reset();
  QueueReply(500, "Internal Server Error\n", false);
}

void HttpSession::OnLinkLost() {
  // The registry has already let go of this id.
  worker_done_ = true;
  instance_.reset();
  stall_.Disarm();
  if (dead_) return;
  if (last_queued_) return ArmWriteDeadline();  // a complete response still gets written whole
  context_.metrics.worker_lost.Inc();
  if (head_written_) return CloseSocket();
  keep_alive_ = false;
  start_.reset();
  QueueReply(502, "Bad Gateway: the worker went away\n", false);
}

void HttpSession::ClientGone() {
  TellDisconnected();
  CloseSocket();
}

void HttpSession::ArmWriteDeadline() {
  // The instance has ended; what is queued must still reach the client, and a client that
  // reads nothing for the slow-client timeout is not kept forever.
  if (dead_ || write_head_ == writes_.size()) return;
  stall_.Disarm();
  stall_.Arm(stream_.get_executor(), context_.options.slow_client_timeout,
             [self = self()] { self->SlowClient(); });
}

void HttpSession::SlowClient() {
  context_.metrics.slow_client_closes.Inc();
  SLUICE_LOG(kInfo, "gateway") << "HTTP client took in nothing for "
                               << context_.options.slow_client_timeout.count()
                               << " s of a pending response; closing it";
  ClientGone();
}

void HttpSession::CloseSocket() {
  if (dead_) return;
  dead_ = true;
  stall_.Disarm();
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  stream_.close();
  DropInstance();
}

}  // namespace sluice::gateway
