#include "gateway/replay.h"

namespace sluice::gateway {

uint64_t Replay::Record(const v1::Event& event) {
  v1::Event copy = event;
  if (!events_.push(std::move(copy))) return 0;
  ++sent_;
  return first_ + events_.size() - 1;
}

bool Replay::Acknowledge(uint64_t seq) {
  if (seq >= first_ + sent_) return false;  // not sent to this instance
  while (first_ <= seq) {                   // every one of them was sent: sent_ > 0
    events_.pop();
    ++first_;
    --sent_;
  }
  return true;
}

Replay::~Replay() {
  if (state_) state_bytes_->Sub(static_cast<int64_t>(state_->size()));
}

void Replay::SaveState(std::string data) {
  const auto held = static_cast<int64_t>(state_ ? state_->size() : 0);
  state_bytes_->Add(static_cast<int64_t>(data.size()) - held);
  if (state_) {
    *state_ = std::move(data);
  } else {
    state_ = std::make_unique<std::string>(std::move(data));
  }
}

bool Replay::CountMove(int64_t now) {
  ++moves_;
  if (window_moves_ == 0 || now - window_start_ > kMoveWindowNs) {
    window_start_ = now;
    window_moves_ = 0;
  }
  return ++window_moves_ <= kMaxMoves;
}

}  // namespace sluice::gateway
