#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/credit.h"
#include "gateway/context.h"
#include "gateway/endpoint.h"
#include "gateway/request_parser.h"

namespace sluice::gateway {

class LinkCall;
class Shard;

/// One HTTP/1.1 client connection: reads requests (keep-alive, pipelined ones parked until
/// their turn), opens one ASGI instance per request on a worker the pool picks, streams the
/// request body to it under credit (never buffered whole: one 64 KiB piece at a time), and
/// writes the response as it streams back — Content-Length, chunked, or close-delimited.
/// While a response streams, a read stays posted so a leaving client is noticed at once
/// (http.disconnect). Upgrades become a WebSocketSession.
/// Thread-safety: lives on its shard's thread. Lifetime: kept by its pending operations and,
/// while a request is open, by the shard's registry.
class HttpSession final : public Endpoint {
 public:
  HttpSession(Shard& shard, const Context& context, boost::asio::ip::tcp::socket socket);
  void Start();

  void OnEnvelope(v1::Envelope& envelope) override;
  void OnLinkLost() override;

 private:
  enum class Framing { kLength, kChunked, kUntilClose, kNoBody };
  struct PendingWrite {
    std::string head;
    std::string body;
    std::string_view tail;
    size_t event_bytes = 0;  // payload of the worker's event, granted back once written
    bool event = false;      // carries a worker event (spent credit)
    bool last = false;       // ends the response
  };

  std::shared_ptr<HttpSession> self();
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void BeginRequest();
  void ReadBody();
  void OnBody(boost::beast::error_code ec);
  void SendEvent(v1::Event&& event);
  void HandleEvent(v1::Event& event);
  void HandleClose(const v1::Close& close);
  void QueueBody(std::string&& body, bool more);
  void QueueReply(unsigned status, std::string_view reason_body, bool retry_after);
  void Grant(size_t bytes);
  void Write();
  void OnWrite(boost::beast::error_code ec);
  void EndResponse();
  void EndRequest();
  /// The worker broke the protocol: log, end its instance, answer 500 or cut the response.
  void Abort(std::string_view why);
  void ClientGone();
  void CloseSocket();

  Shard& shard_;
  const Context& context_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  bool reading_ = false;  // a header or body read is in flight
  bool parked_ = false;   // a pipelined request header waits in parser_
  bool dead_ = false;     // socket closed

  // The request in progress: one ASGI instance (id_ != 0).
  uint64_t id_ = 0;
  std::shared_ptr<LinkCall> link_;
  std::optional<SendCredit> credit_;       // towards the worker
  std::optional<ReceiveWindow> window_;    // from the worker
  std::unique_ptr<char[]> chunk_;          // body piece being read; only while reading one
  bool keep_alive_ = false;
  bool head_request_ = false;
  bool http10_ = false;
  bool body_done_ = false;
  bool worker_done_ = false;  // the instance ended (Close received) or its link is gone

  // The response.
  std::optional<v1::HttpResponseStart> start_;  // until its head is written
  bool head_written_ = false;
  bool last_queued_ = false;
  Framing framing_ = Framing::kNoBody;
  uint64_t remaining_ = 0;  // of a declared Content-Length
  bool close_after_ = false;
  std::vector<PendingWrite> writes_;  // FIFO, bounded by the worker's credit + 2
  size_t write_head_ = 0;
  bool writing_ = false;
};

}  // namespace sluice::gateway
