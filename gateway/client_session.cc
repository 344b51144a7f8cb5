#include "gateway/client_session.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/error.hpp>

#include "common/log.h"
#include "common/protocol.h"
#include "gateway/layer_ops.h"
#include "gateway/metrics.h"
#include "gateway/shard.h"
#include "layer/message.h"

namespace sluice::gateway {
namespace net = boost::asio;

ClientSession::ClientSession(Shard& shard, const Context& context,
                             std::unique_ptr<Transport> transport, GaugeShare connection,
                             std::string pending)
    : shard_(shard),
      context_(context),
      transport_(std::move(transport)),
      connection_(std::move(connection)),
      queued_bytes_(context.metrics.queued_bytes),
      pending_(std::move(pending)),
      out_(context.options.receive_window.events() + kControlChunks) {
  shard_.Attach(this);
}

ClientSession::~ClientSession() { shard_.Detach(this); }

int64_t ClientSession::Deadline(std::chrono::steady_clock::duration timeout) const {
  return shard_.now() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
}

void ClientSession::OnTick(int64_t now) {
  if (conn_ == Conn::kClosed) return;
  if (read_deadline_ != 0 && now >= read_deadline_) {
    read_deadline_ = 0;
    if (conn_ == Conn::kLingering) {
      context_.metrics.limit_linger.Inc();
      return CloseNow();
    }
    OnReadDeadline();
  }
  if (conn_ == Conn::kClosed) return;
  if (write_deadline_ != 0 && now >= write_deadline_) {
    write_deadline_ = 0;
    OnSlowClient();
  }
}

// ---- Reading -----------------------------------------------------------------------------

void ClientSession::SetReadDeadline(std::chrono::steady_clock::duration timeout) {
  read_deadline_ = Deadline(timeout);
}

void ClientSession::Resume() {
  if (conn_ == Conn::kOpen && !pending_.empty() && !feeding_ && WantsRead()) Feed({});
  WaitReadable();
}

void ClientSession::WaitReadable() {
  if (reading_ || conn_ == Conn::kClosed) return;
  if (conn_ == Conn::kOpen && (feeding_ || !WantsRead())) return;
  reading_ = true;
  transport_->WaitReadable([self = self()](boost::system::error_code ec) { self->OnReadable(ec); });
}

void ClientSession::OnReadable(boost::system::error_code ec) {
  reading_ = false;
  if (conn_ == Conn::kClosed) return;
  const std::span<char> scratch = shard_.scratch();
  // A few reads per readiness at most, so one busy client cannot starve the shard.
  for (int round = 0; round < 4 && !ec; ++round) {
    if (conn_ == Conn::kOpen && !WantsRead()) return;  // what waits stays in the kernel
    const size_t n = transport_->ReadSome(net::buffer(scratch.data(), scratch.size()), ec);
    if (ec == net::error::would_block) {
      ec = {};
      break;
    }
    if (ec) break;
    if (conn_ == Conn::kLingering) {
      linger_left_ -= std::min<uint64_t>(linger_left_, n);
      if (linger_left_ == 0) {
        context_.metrics.limit_linger.Inc();
        return CloseNow();
      }
    } else {
      Feed({scratch.data(), n});
      if (conn_ == Conn::kClosed) return;
    }
    if (n < scratch.size()) break;
  }
  if (ec) {
    if (conn_ == Conn::kLingering) return CloseNow();  // the client closed: done
    return OnReadEnd(ec);
  }
  WaitReadable();
}

void ClientSession::Feed(std::string_view data) {
  feeding_ = true;
  if (pending_.empty()) {
    const size_t used = OnBytes(data);
    if (used < data.size() && conn_ == Conn::kOpen) pending_.assign(data.substr(used));
  } else {
    pending_.append(data);
    const size_t used = OnBytes(pending_);
    pending_.erase(0, used);
  }
  if (pending_.empty() || conn_ != Conn::kOpen) std::string().swap(pending_);  // release
  feeding_ = false;
}

// ---- Writing -----------------------------------------------------------------------------

bool ClientSession::Queue(Chunk&& chunk) {
  if (conn_ != Conn::kOpen || close_queued_) {
    Granted(chunk);  // nobody will read it; the worker is not charged for it
    return true;
  }
  const uint64_t bytes = chunk.credit_bytes;
  if (!out_.push(std::move(chunk))) return false;
  queued_bytes_.Add(static_cast<int64_t>(bytes));
  if (progress_ && write_deadline_ == 0) {
    write_deadline_ = Deadline(context_.options.slow_client_timeout);
  }
  StartWrite();
  return true;
}

void ClientSession::DropQueued() {
  while (!out_.empty()) {
    Chunk chunk = out_.take();
    queued_bytes_.Sub(static_cast<int64_t>(chunk.credit_bytes));
  }
}

void ClientSession::StartWrite() {
  if (!inflight_.empty() || out_.empty() || conn_ != Conn::kOpen) return;
  const size_t n = std::min(out_.size(), kMaxBatch);
  inflight_.reserve(n);
  std::vector<net::const_buffer> buffers;
  buffers.reserve(3 * n);
  for (size_t i = 0; i < n; ++i) {
    inflight_.push_back(out_.take());
    const Chunk& chunk = inflight_.back();
    if (!chunk.head.empty()) buffers.emplace_back(chunk.head.data(), chunk.head.size());
    if (!chunk.body.empty()) buffers.emplace_back(chunk.body.data(), chunk.body.size());
    if (!chunk.tail.empty()) buffers.emplace_back(chunk.tail.data(), chunk.tail.size());
  }
  transport_->Write(
      buffers, [self = self()](boost::system::error_code ec, size_t) { self->OnWriteDone(ec); });
}

void ClientSession::OnWriteDone(boost::system::error_code ec) {
  std::vector<Chunk> done = std::move(inflight_);
  inflight_ = {};
  for (const Chunk& chunk : done) queued_bytes_.Sub(static_cast<int64_t>(chunk.credit_bytes));
  if (conn_ == Conn::kClosed) return;
  if (ec) return OnReadEnd(ec);  // the client is gone: the same as a read that failed
  if (out_.empty()) {
    write_deadline_ = 0;
    progress_ = false;
  } else if (progress_) {
    write_deadline_ = Deadline(context_.options.slow_client_timeout);  // progress: again
  }
  for (const Chunk& chunk : done) {
    Granted(chunk);
    OnWritten(chunk);
    if (conn_ == Conn::kClosed) return;
  }
  done.clear();  // payloads freed before the next write starts
  StartWrite();
  MaybeShutdown();
}

void ClientSession::Granted(const Chunk& chunk) {
  if (chunk.credit) CreditBack(chunk.credit_bytes);
}

void ClientSession::RequireProgress() {
  progress_ = true;
  write_deadline_ = idle_writer() ? 0 : Deadline(context_.options.slow_client_timeout);
}

void ClientSession::CloseGracefully() {
  close_queued_ = true;
  MaybeShutdown();
}

void ClientSession::MaybeShutdown() {
  if (!close_queued_ || conn_ != Conn::kOpen || !idle_writer()) return;
  conn_ = Conn::kLingering;
  if (instance_open()) TellDisconnected(AbnormalDisconnect());
  DropInstance();
  if (!feeding_) std::string().swap(pending_);  // else Feed releases it
  transport_->ShutdownSend();
  linger_left_ = kLingerBytes;
  write_deadline_ = 0;
  read_deadline_ = Deadline(context_.options.linger_timeout);
  WaitReadable();
}

void ClientSession::CloseNow() {
  if (conn_ == Conn::kClosed) return;
  conn_ = Conn::kClosed;
  if (instance_open()) TellDisconnected(AbnormalDisconnect());
  DropInstance();
  read_deadline_ = write_deadline_ = 0;
  DropQueued();
  if (!feeding_) std::string().swap(pending_);  // else Feed releases it
  transport_->Close();
}

ClientSession::Handover ClientSession::HandOver() {
  conn_ = Conn::kClosed;
  read_deadline_ = write_deadline_ = 0;
  return {std::move(transport_), std::move(connection_)};
}

// ---- The instance ------------------------------------------------------------------------

void ClientSession::CreditBack(uint64_t bytes) {
  if (!instance_ || worker_done_) return;
  if (instance_->Consumed(bytes) && !progress_) write_deadline_ = 0;
}

InstanceLink& ClientSession::BindInstance(std::shared_ptr<Link> link) {
  const uint64_t id = shard_.Register(shared_from_this(), link->generation());
  instance_.emplace(id, shard_.index(), std::move(link), context_.options.receive_window);
  worker_done_ = false;
  return *instance_;
}

bool ClientSession::OpenInstance(v1::Scope&& scope, v1::Event* first) {
  if (context_.layer) {
    // A WebSocket's channel is created with it. An HTTP request's is only named here: most
    // never use it, and creating and closing one costs three tasks on the layer's loop. It
    // is created by the request's first layer operation (RunLayerOp), before that runs.
    channel_open_ = scope.type() == v1::Scope::TYPE_WEBSOCKET;
    channel_ = channel_open_ ? context_.layer->NewChannel(instance_->id())
                             : context_.layer->ChannelName(instance_->id());
  }
  if (!instance_->Open(std::move(scope), first, channel_)) return false;
  PullLayer();
  return true;
}

void ClientSession::SendToWorker(v1::Event&& event) {
  uint64_t seq = 0;
  if (replay_ && Numbered(event)) {
    seq = replay_->Record(event);
    // The worker grants credit only for events it acknowledged: the window bounds the kept.
    if (seq == 0) return HandleWorkerError("credit granted for events not acknowledged");
  }
  instance_->Send(std::move(event), seq);
}

void ClientSession::EnableReplay(std::string scope) {
  replay_ = std::make_unique<Replay>(std::move(scope), context_.metrics.state_bytes);
}

std::string ClientSession::ScopePath() const {
  v1::Scope scope;
  if (!replay_ || !scope.ParseFromString(replay_->scope())) return {};
  return scope.path();
}

ClientSession::MoveResult ClientSession::MoveInstance(bool resume) {
  auto& metrics = context_.metrics;
  if (!replay_->CountMove(shard_.now())) {
    metrics.move_too_often.Inc();
    return MoveResult::kTooOften;
  }
  auto link = context_.picker.Pick();
  if (!link) {
    metrics.move_no_worker.Inc();
    return MoveResult::kNoWorker;
  }
  metrics.moved.Inc();
  v1::Scope scope;
  scope.ParseFromString(replay_->scope());
  BindInstance(std::move(link));
  layer_ops_ = 0;  // the old instance's operations are answered to nobody
  v1::Event first;
  if (resume) {
    v1::WebSocketResume* resumed = first.mutable_websocket_resume();
    if (replay_->state()) {
      resumed->set_state(*replay_->state());
      resumed->set_saved(true);
    }
    resumed->set_moves(replay_->moves());
  } else {
    first.mutable_websocket_connect();
  }
  replay_->Rewind();  // every kept event goes to the new instance
  // A failed Open (that link is ending too) is followed by OnLinkLost: it moves again.
  if (!instance_->Open(std::move(scope), &first, channel_)) return MoveResult::kMoved;
  metrics.replayed.Inc(replay_->unsent());
  FlushReplay();
  PullLayer();
  return MoveResult::kMoved;
}

void ClientSession::FlushReplay() {
  while (replay_ && replay_->unsent() > 0 && instance_ && !worker_done_ && instance_->CanSend()) {
    const auto [event, seq] = replay_->Next();
    replay_->MarkSent();
    instance_->Send(v1::Event(*event), seq);
  }
}

void ClientSession::TellDisconnected(v1::Event&& event) {
  if (instance_ && !worker_done_) instance_->Send(std::move(event));
  worker_done_ = true;
  DropInstance();
}

void ClientSession::DropInstance(bool keep_channel) {
  worker_done_ = true;
  if (!keep_channel) CloseChannel();
  if (!instance_) return;
  shard_.Unregister(instance_->id());
  instance_.reset();
  // Credit no longer paces what is queued; it must still move.
  if (!idle_writer()) RequireProgress();
}

void ClientSession::OnEnvelope(v1::Envelope& envelope) {
  if (conn_ == Conn::kClosed || !instance_ || worker_done_ ||
      envelope.connection_id() != instance_->id()) {
    return;
  }
  if (envelope.acked() != 0 && (!replay_ || !replay_->Acknowledge(envelope.acked()))) {
    return HandleWorkerError("acknowledged an event it was not sent");
  }
  if (envelope.has_state()) {
    std::string& state = *envelope.mutable_state()->mutable_data();
    if (!replay_) return HandleWorkerError("saved state for a connection that cannot move");
    if (state.size() > kMaxSavedStateBytes) return HandleWorkerError("saved state too large");
    context_.metrics.states_saved.Inc();
    replay_->SaveState(std::move(state));
  }
  if (envelope.has_credit()) {
    instance_->OnCredit(envelope.credit());
    FlushReplay();
    Resume();
    PullLayer();
    if (!instance_open() || conn_ == Conn::kClosed) return;
  }
  for (v1::Event& event : *envelope.mutable_events()) {
    if (!instance_open() || conn_ == Conn::kClosed) return;
    if (!instance_->OnReceived(event)) return HandleWorkerError("the worker overran its credit");
    if (instance_->worker_blocked() && write_deadline_ == 0) {
      context_.metrics.credit_stalls_to_client.Inc();
      write_deadline_ = Deadline(context_.options.slow_client_timeout);
    }
    HandleEvent(event);
  }
  // Before the close: what an instance sends as it ends still goes out.
  for (v1::LayerOp& op : *envelope.mutable_layer_ops()) {
    if (!instance_open()) return;
    RunLayerOp(op);
  }
  if (envelope.has_close() && instance_open()) {
    DropInstance(/*keep_channel=*/true);  // the connection may move (HandleClose decides)
    HandleClose(envelope.close());
    if (!instance_open()) CloseChannel();  // unless it moved
  }
}

void ClientSession::OnLinkLost() {
  // The registry has already let go of this id.
  worker_done_ = true;
  instance_.reset();
  if (conn_ == Conn::kClosed) return CloseChannel();
  context_.metrics.worker_lost.Inc();
  HandleLinkLost();  // a WebSocket moves to another worker if it can
  if (instance_open()) return;
  CloseChannel();
  if (!idle_writer()) RequireProgress();
}

// ---- The channel layer -------------------------------------------------------------------

void ClientSession::PullLayer() {
  if (!channel_open_ || layer_receiving_ || !instance_open()) return;
  if (layer_held_) {
    if (!can_send_to_worker()) return;
    v1::Event event;
    event.mutable_layer_message()->set_message(layer::EncodeMsgpack(*layer_held_));
    layer_held_.reset();
    SendToWorker(std::move(event));
  }
  // Only with credit for what it brings: a consumer that stops reading stops the pulling, and
  // the messages wait in the channel's bounded queue, where senders meet its capacity.
  if (!can_send_to_worker()) return;
  layer_receiving_ = true;
  context_.layer->Receive(
      channel_,
      net::bind_executor(shard_.io(), [self = self(), channel = channel_](
                                          layer::Status status, layer::MessagePtr message) mutable {
        self->OnLayerMessage(channel, status, std::move(message));
      }));
}

void ClientSession::OnLayerMessage(const std::string& channel, layer::Status status,
                                   layer::MessagePtr message) {
  if (channel != channel_) return;  // a closed channel's (an earlier request's) Receive
  layer_receiving_ = false;
  if (status != layer::Status::kOk || !message || conn_ == Conn::kClosed) return;
  layer_held_ = std::move(message);
  PullLayer();
}

void ClientSession::RunLayerOp(v1::LayerOp& op) {
  const uint64_t op_id = op.op_id();
  if (context_.layer == nullptr) {
    return instance_->SendLayerResult(op_id, v1::LayerResult::STATUS_UNAVAILABLE);
  }
  if (layer_ops_ >= kMaxLayerOps) {
    context_.metrics.worker_protocol_errors.Inc();
    return instance_->SendLayerResult(op_id, v1::LayerResult::STATUS_INVALID);
  }
  ++layer_ops_;
  if (!channel_open_ && !channel_.empty()) {
    context_.layer->NewChannel(instance_->id());  // queued on the layer's loop before the op
    channel_open_ = true;
    PullLayer();
  }
  gateway::RunLayerOp(*context_.layer, channel_, op, shard_.io().get_executor(),
                      [self = self(), id = instance_->id(), op_id](v1::LayerResult::Status status) {
                        self->OnLayerResult(id, op_id, status);
                      });
}

void ClientSession::OnLayerResult(uint64_t id, uint64_t op_id, v1::LayerResult::Status status) {
  if (!instance_ || worker_done_ || instance_->id() != id) return;
  --layer_ops_;
  instance_->SendLayerResult(op_id, status);
}

void ClientSession::CloseChannel() {
  if (channel_.empty()) return;
  if (std::exchange(channel_open_, false)) {
    context_.layer->CloseChannel(std::exchange(channel_, {}));
  } else {
    channel_.clear();
  }
  layer_held_.reset();
  layer_receiving_ = false;
  layer_ops_ = 0;
}

}  // namespace sluice::gateway
