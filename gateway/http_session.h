#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "gateway/context.h"
#include "gateway/endpoint.h"
#include "gateway/instance_link.h"
#include "gateway/request_parser.h"
#include "gateway/stall_timer.h"

namespace sluice::gateway {

class Shard;

/// One HTTP/1.1 client connection: reads requests (keep-alive; a pipelined one waits in the
/// buffer for its turn), opens one ASGI instance per request on a worker the pool picks, streams
/// the request body to it under credit (never buffered whole: one 64 KiB piece at a time), and
/// writes the response as it streams back — Content-Length, chunked, or close-delimited.
/// While a response streams, a read stays posted so a leaving client is noticed at once
/// (http.disconnect). Upgrades become a WebSocketSession.
/// Thread-safety: lives on its shard's thread. Lifetime: kept by its pending operations and,
/// while a request is open, by the shard's registry.
class HttpSession final : public Endpoint {
 public:
  /// `over_limit`: the gateway is at --max-connections; the first request gets 503.
  HttpSession(Shard& shard, const Context& context, boost::asio::ip::tcp::socket socket,
              bool over_limit);
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
  void Watch();
  void AwaitNextRequest();
  void OnHeader(boost::beast::error_code ec);
  void BeginRequest();
  void ReadBody();
  void OnBody(boost::beast::error_code ec);
  /// Sends http.disconnect unless the instance has ended or already had it.
  void TellDisconnected();
  void HandleEvent(v1::Event& event);
  void HandleClose(const v1::Close& close);
  void QueueBody(std::string&& body, bool more);
  void QueueReply(unsigned status, std::string_view reason_body, bool retry_after);
  void Grant(size_t bytes);
  void Write();
  void OnWrite(boost::beast::error_code ec);
  void EndResponse();
  void EndRequest();
  /// Forgets the instance (unregistering its id): nothing more is sent to it.
  void DropInstance();
  /// The worker broke the protocol: log, end its instance, answer 500 or cut the response.
  void Abort(std::string_view why);
  void ClientGone();
  void SlowClient();
  /// Once the instance has ended: the queued response must make progress within the
  /// slow-client timeout, else the client is closed.
  void ArmWriteDeadline();
  /// 413, 431, 400, 503: an answer of the gateway's own that ends the connection.
  void Refuse(unsigned status, std::string_view body, Counter& reason);
  void CloseSocket();

  Shard& shard_;
  const Context& context_;
  GaugeShare connection_;    // in sluice_gateway_connections; moves on upgrade
  GaugeShare queued_bytes_;  // client-bound payload in writes_
  const bool over_limit_;
  bool served_ = false;        // a request has been answered: later ones are keep-alive
  StallTimer stall_;           // armed while the worker has no credit left (client slow)
  bool read_stalled_ = false;  // counted once per stall
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  bool reading_ = false;  // a header, body or watching read is in flight
  bool dead_ = false;     // socket closed

  // The request in progress: one ASGI instance.
  std::optional<InstanceLink> instance_;
  std::unique_ptr<char[]> chunk_;  // body piece being read; only while reading one
  bool keep_alive_ = false;
  bool head_request_ = false;
  bool http10_ = false;
  bool body_done_ = false;
  bool worker_done_ = false;  // the instance ended, had its disconnect, or its link is gone

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
