#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/bounded_fifo.h"
#include "common/metrics.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

/// What a WebSocket connection keeps so that it can move to another worker
/// (docs/failover.md): its scope (serialized once, at the handshake), the state its consumer
/// saved last, and the numbered events (websocket.receive, layer_message) sent to the worker
/// and not yet acknowledged, with the number of the oldest.
///
/// Bounds: the worker grants credit only for events it has acknowledged, so what is kept is
/// at most the worker's receive window (events; bytes plus one event). kMaxEvents is a
/// backstop against a worker that breaks that rule (Record fails: a protocol error). The
/// state is at most kMaxSavedStateBytes. An idle connection holds the scope and the state only:
/// the FIFO's ring is freed when it runs empty.
///
/// After a move, Rewind() makes every kept event unsent: they go to the new instance again,
/// in order, with their numbers, as its credit allows (Next/MarkSent), before any new event.
/// Thread-safety: the session's shard thread only.
class Replay final {
 public:
  static constexpr size_t kMaxEvents = 4096;

  /// Moves allowed within kMoveWindowNs; one more closes the connection (a connection whose
  /// events take every worker down must not take them all down in turn).
  static constexpr uint32_t kMaxMoves = 8;
  static constexpr int64_t kMoveWindowNs = 60'000'000'000;

  /// `state_bytes` counts the state held.
  Replay(std::string scope, Gauge& state_bytes)
      : scope_(std::move(scope)), events_(kMaxEvents), state_bytes_(&state_bytes) {}
  ~Replay();
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  /// The serialized scope of the handshake.
  const std::string& scope() const { return scope_; }

  /// Keeps a copy of `event`, sent now; returns its number. False (0) past kMaxEvents.
  uint64_t Record(const v1::Event& event);
  /// The worker acknowledged every event up to `seq`. False when `seq` names an event that
  /// was never sent (a protocol error).
  [[nodiscard]] bool Acknowledge(uint64_t seq);

  /// Kept events not yet sent to the current instance (after a Rewind).
  size_t unsent() const { return events_.size() - sent_; }
  /// The oldest unsent event and its number; unsent() > 0.
  std::pair<const v1::Event*, uint64_t> Next() { return {&events_[sent_], first_ + sent_}; }
  void MarkSent() { ++sent_; }
  /// The connection moved: every kept event is to be sent again.
  void Rewind() { sent_ = 0; }

  void SaveState(std::string data);
  /// The state saved last; null when none was.
  const std::string* state() const { return state_.get(); }

  /// Times the connection has moved.
  uint32_t moves() const { return moves_; }
  /// Counts a move at `now` (ns); false when it is one too many within kMoveWindowNs.
  bool CountMove(int64_t now);

 private:
  // Kept small: every open WebSocket has one.
  const std::string scope_;
  BoundedFifo<v1::Event> events_;
  std::unique_ptr<std::string> state_;  // null: none saved
  Gauge* state_bytes_;                  // counts state_'s size
  uint64_t first_ = 1;  // the number of events_.front() (or of the next event when empty)
  int64_t window_start_ = 0;
  uint32_t sent_ = 0;  // events_[0, sent_) went to the current instance
  uint32_t moves_ = 0;
  uint32_t window_moves_ = 0;  // moves since window_start_
};

}  // namespace sluice::gateway
