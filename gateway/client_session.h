#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bounded_fifo.h"
#include "common/metrics.h"
#include "gateway/context.h"
#include "gateway/endpoint.h"
#include "gateway/instance_link.h"
#include "gateway/replay.h"
#include "gateway/transport.h"
#include "layer/channel_layer.h"

namespace sluice::gateway {

class Shard;

/// What HTTP and WebSocket sessions share, written once:
/// - the client transport and reading: readiness waits, bytes taken into the shard's
///   scratch buffer and handed to the protocol (OnBytes); what it cannot take yet (a partial
///   header, frames beyond credit, a pipelined request) waits in `pending_`;
/// - the client-bound queue: a BoundedFifo of at most the granted window + kControlChunks
///   chunks, written in batches of up to kMaxBatch with one write in flight; a batch is moved
///   out of the FIFO before its write starts, so later pushes never move what is written;
/// - deadlines, checked by the shard's sweep: a read deadline the protocol sets and a write
///   deadline: armed while the worker is out of credit (the client reads too slowly: closed
///   after --slow-client-timeout), or, once nothing more is accepted from the worker, for
///   progress of what is still queued;
/// - graceful close: once the queue is written, FIN, then what the client still sends is
///   read and dropped (at most kLingerBytes, for --linger-timeout) so it receives our answer
///   instead of a reset;
/// - the binding to one application instance: credit both ways, telling the worker the
///   client left, forgetting the instance, losing its link;
/// - the instance's channel-layer channel (Context::layer): created with the Open, one
///   Receive kept pending while the worker has credit for one more event (a consumer that
///   stops reading stops the pulling, and senders meet the channel's capacity: ChannelFull),
///   each message forwarded as a layer_message event; the instance's layer operations run
///   with its channel as the group member, at most kMaxLayerOps at once; the channel is
///   closed (its groups left) when the instance is forgotten;
/// - moving (WebSocket only, once EnableReplay was called): the numbered events the worker has
///   not acknowledged are kept (Replay); when the worker is lost or hands the connection back,
///   MoveInstance opens a new instance on another worker with the same channel (its groups
///   stay), websocket.resume and the saved state, then sends the kept events again before
///   anything new (docs/failover.md).
/// Thread-safety: the shard thread only. Lifetime: held by its pending operations and, while
/// an instance is open, by the shard's registry; on the shard's session list until destroyed.
class ClientSession : public Endpoint {
 public:
  /// Largest number of chunks written by one write call.
  static constexpr size_t kMaxBatch = 16;
  /// Queue slots beyond the worker's window, for what the gateway writes by itself: an
  /// interim 100 Continue, a canned reply, a pong (at most one is queued), a close frame.
  static constexpr size_t kControlChunks = 4;
  /// Most bytes read and dropped while lingering.
  static constexpr uint64_t kLingerBytes = 64ull << 20;

  ~ClientSession() override;

  /// From the shard's sweep: acts on deadlines that have passed.
  void OnTick(int64_t now);
  /// The gateway is stopping: finish what is in progress, then close (HTTP); refuse a
  /// handshake in progress (WebSocket: an open one stays until Retire).
  virtual void Drain() = 0;
  /// The drain's time is up: an open WebSocket closes with 1001 (going away).
  virtual void Retire() {}
  /// The drain timed out: close now (the instance is told its client left).
  void Cut() { CloseNow(); }

  void OnEnvelope(v1::Envelope& envelope) final;
  void OnLinkLost() final;

  bool closed() const { return conn_ == Conn::kClosed; }

 protected:
  /// One piece of client-bound output: `head` (a response head, chunk header or frame
  /// header), `body` (a worker's payload, moved, never copied) and a static `tail`.
  struct Chunk {
    std::string head;
    std::string body;
    std::string_view tail;
    uint64_t credit_bytes = 0;  // the worker's event payload, credited back once written
    bool credit = false;        // carries a worker event: one event of credit
    bool last = false;          // ends what the session is writing (response, close frame)
    uint8_t tag = 0;            // the session's own mark (a pong, say)
  };

  ClientSession(Shard& shard, const Context& context, std::unique_ptr<Transport> transport,
                GaugeShare connection, std::string pending);

  // ---- The protocol's side (HttpSession, WebSocketSession) ----
  /// Takes bytes from the client; returns how many were used. The rest waits in pending_
  /// and is offered again (with more) on the next call.
  virtual size_t OnBytes(std::string_view data) = 0;
  /// Whether the protocol wants bytes now (credit, phase).
  virtual bool WantsRead() const = 0;
  /// The client closed or the read failed (not called while lingering).
  virtual void OnReadEnd(boost::system::error_code ec) = 0;
  virtual void OnReadDeadline() = 0;
  /// The write deadline passed: the client took nothing for --slow-client-timeout.
  virtual void OnSlowClient() = 0;
  /// A chunk was written whole.
  virtual void OnWritten(const Chunk& chunk) = 0;
  /// An event from the worker, within credit.
  virtual void HandleEvent(v1::Event& event) = 0;
  /// The instance ended (it has been forgotten already).
  virtual void HandleClose(const v1::Close& close) = 0;
  /// The worker's link broke (the instance has been forgotten already).
  virtual void HandleLinkLost() = 0;
  /// The worker broke the protocol (overran its credit, sent a wrong event): log, count,
  /// answer 500 or close 1011.
  virtual void HandleWorkerError(std::string_view why) = 0;

  /// The event that tells the worker its client vanished (http.disconnect, or
  /// websocket.disconnect 1006), sent when the connection is closed under a live instance.
  virtual v1::Event AbnormalDisconnect() const = 0;

  // ---- Reading ----
  /// Reads if the protocol wants to and nothing is in progress; first offers pending_.
  void Resume();
  void SetReadDeadline(std::chrono::steady_clock::duration timeout);
  void ClearReadDeadline() { read_deadline_ = 0; }
  size_t pending_bytes() const { return pending_.size(); }

  // ---- Writing ----
  /// Queues a chunk and starts writing. False when the queue is full (the worker overran
  /// its credit; the caller treats it as a protocol error).
  bool Queue(Chunk&& chunk);
  /// Drops queued chunks that are not being written yet.
  void DropQueued();
  bool idle_writer() const { return out_.empty() && inflight_.empty(); }
  /// From now on the queue must make progress within --slow-client-timeout (nothing more
  /// is accepted from the worker, so credit no longer paces it).
  void RequireProgress();
  /// Once everything queued is written: FIN, then drop what the client still sends for at
  /// most --linger-timeout and kLingerBytes, then close.
  void CloseGracefully();
  /// Closes now: unwritten output is lost, the client may see a reset.
  void CloseNow();

  /// The connection moves to another session (an HTTP upgrade): this one is finished.
  struct Handover {
    std::unique_ptr<Transport> transport;
    GaugeShare connection;
  };
  Handover HandOver();

  // ---- The instance ----
  /// Credit back for an event the worker sent that queues nothing (http.response.start).
  void CreditBack(uint64_t bytes);
  /// The instance's channel-layer channel; empty without an instance or a layer.
  const std::string& channel() const { return channel_; }
  /// Registers a new connection id on `link`.
  InstanceLink& BindInstance(std::shared_ptr<Link> link);
  /// Sends the instance's Open, with its first event if given. False when the link is
  /// ending (OnLinkLost follows).
  bool OpenInstance(v1::Scope&& scope, v1::Event* first);
  /// Sends an event; the instance must be open (and, for credit events, CanSend()).
  void SendToWorker(v1::Event&& event);
  /// The worker may take another event now (and no replayed event waits for credit).
  bool can_send_to_worker() const {
    return instance_ && !worker_done_ && instance_->CanSend() && (!replay_ || !replay_->unsent());
  }
  bool instance_open() const { return instance_.has_value() && !worker_done_; }
  /// The client has gone (or will never be read again): tells the worker once, with
  /// `event` (http.disconnect or websocket.disconnect), and forgets the instance.
  void TellDisconnected(v1::Event&& event);
  /// Forgets the instance: nothing more is sent to or accepted from it. Its channel is closed
  /// (its groups left) unless `keep_channel` (the connection is about to move).
  void DropInstance(bool keep_channel = false);

  // ---- Moving (WebSocket) ----
  /// From now on numbered events are kept until acknowledged; `scope` is the serialized scope.
  void EnableReplay(std::string scope);
  /// The kept scope's path (for log lines); empty without EnableReplay.
  std::string ScopePath() const;
  /// The instance is gone (link lost, or handed back): opens one on another worker, resuming
  /// (`resume`: websocket.resume with the saved state) or connecting afresh (the handshake was
  /// not answered yet), and sends the kept events again. Fails when no worker has room or
  /// the connection moved too often; the caller closes it.
  enum class MoveResult { kMoved, kNoWorker, kTooOften };
  MoveResult MoveInstance(bool resume);

  Transport& transport() { return *transport_; }
  Shard& shard_;
  const Context& context_;

 private:
  friend class Shard;
  enum class Conn { kOpen, kLingering, kClosed };

  std::shared_ptr<ClientSession> self() {
    return std::static_pointer_cast<ClientSession>(shared_from_this());
  }
  void WaitReadable();
  void OnReadable(boost::system::error_code ec);
  void Feed(std::string_view data);
  void StartWrite();
  void OnWriteDone(boost::system::error_code ec);
  void MaybeShutdown();
  void Granted(const Chunk& chunk);
  int64_t Deadline(std::chrono::steady_clock::duration timeout) const;
  // The channel layer.
  /// Forwards a held message and keeps one Receive pending, while the worker has credit.
  void PullLayer();
  void OnLayerMessage(const std::string& channel, layer::Status status, layer::MessagePtr message);
  void RunLayerOp(v1::LayerOp& op);
  void OnLayerResult(uint64_t id, uint64_t op_id, v1::LayerResult::Status status);
  void CloseChannel();
  /// Sends kept events to a new instance as its credit allows.
  void FlushReplay();

  std::unique_ptr<Transport> transport_;
  GaugeShare connection_;    // in sluice_gateway_connections
  GaugeShare queued_bytes_;  // worker payload in out_
  std::string pending_;      // bytes read, not yet taken by the protocol
  BoundedFifo<Chunk> out_;
  std::vector<Chunk> inflight_;  // the batch being written, moved out of out_
  std::optional<InstanceLink> instance_;
  std::unique_ptr<Replay> replay_;  // WebSocket only
  std::string channel_;             // the instance's layer channel; empty: none
  bool channel_open_ = false;       // created in the layer (see OpenInstance)
  layer::MessagePtr layer_held_;    // received while the worker had no credit for it
  uint32_t layer_ops_ = 0;          // the instance's layer operations not yet answered
  int64_t read_deadline_ = 0;       // 0: none
  int64_t write_deadline_ = 0;      // 0: none
  uint64_t linger_left_ = 0;
  ClientSession* prev_ = nullptr;  // the shard's session list
  ClientSession* next_ = nullptr;
  Conn conn_ = Conn::kOpen;
  bool reading_ = false;          // a readiness wait is pending
  bool worker_done_ = false;      // nothing more goes to the worker
  bool progress_ = false;         // the write deadline measures progress, not a credit stall
  bool close_queued_ = false;     // CloseGracefully was called
  bool feeding_ = false;          // inside OnBytes
  bool layer_receiving_ = false;  // a Receive on channel_ is pending
};

}  // namespace sluice::gateway
