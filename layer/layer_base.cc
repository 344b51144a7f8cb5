#include "layer/layer_base.h"

#include <algorithm>
#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <stdexcept>

namespace sluice::layer {

LayerBase::LayerBase(const Executor& executor, Options options)
    : executor_(executor),
      options_(std::move(options)),
      local_prefix_("specific." + options_.gateway_id + "!") {
  if (options_.gateway_id.empty() || !ValidGroupName(options_.gateway_id)) {
    throw std::invalid_argument("channel layer: invalid gateway id '" + options_.gateway_id + "'");
  }
  if (!options_.clock) options_.clock = SystemClock;
}

std::string LayerBase::ChannelName(uint64_t id) const {
  char local[17];
  std::snprintf(local, sizeof local, "%llx", static_cast<unsigned long long>(id));
  return local_prefix_ + local;
}

std::string LayerBase::NewChannel(uint64_t id) {
  std::string name = ChannelName(id);
  Run([this, name] { local_.try_emplace(name, CapacityOf(name)); });
  return name;
}

void LayerBase::CloseChannel(std::string channel) {
  Run([this, channel = std::move(channel)] {
    if (!IsLocal(channel)) return CancelNamed(channel);
    auto it = local_.find(channel);
    if (it == local_.end()) return;
    if (it->second.waiter) Deliver(std::move(it->second.waiter), Status::kCancelled);
    std::vector<std::string> groups = std::move(it->second.groups);
    local_.erase(it);
    if (!groups.empty()) LeaveGroups(channel, std::move(groups));
  });
}

void LayerBase::Receive(std::string channel, ReceiveCompletion done) {
  Run([this, channel = std::move(channel), done = std::move(done)]() mutable {
    if (!ValidChannelName(channel) || channel.ends_with('!')) {
      return Deliver(std::move(done), Status::kInvalid);
    }
    if (!IsLocal(channel)) return ReceiveNamed(std::move(channel), std::move(done));
    Mailbox* box = FindLocal(channel);
    if (!box) return Deliver(std::move(done), Status::kCancelled);  // closed, or never made
    Serve(*box, std::move(done));
  });
}

size_t LayerBase::CapacityOf(std::string_view channel) const {
  for (const CapacityRule& rule : options_.channel_capacity) {
    if (rule.Matches(channel)) return rule.capacity();
  }
  return options_.capacity;
}

LayerBase::Mailbox* LayerBase::FindLocal(const std::string& channel) {
  auto it = local_.find(channel);
  return it == local_.end() ? nullptr : &it->second;
}

bool LayerBase::Offer(Mailbox& box, MessagePtr message, double expires, bool drop_oldest) {
  DropExpired(box);
  if (box.waiter) {
    // A waiter means the queue is empty: hand the message over at once.
    Deliver(std::move(box.waiter), Status::kOk, std::move(message));
    return true;
  }
  if (box.queue.full()) {
    if (!drop_oldest) return false;
    box.queue.pop();
    stats_.dropped_overflow.fetch_add(1, std::memory_order_relaxed);
  }
  const bool pushed = box.queue.push(Queued{expires, std::move(message)});
  (void)pushed;  // there is room: checked above
  return true;
}

void LayerBase::Serve(Mailbox& box, ReceiveCompletion done) {
  if (box.waiter) return Deliver(std::move(done), Status::kInvalid);  // one Receive at a time
  DropExpired(box);
  if (box.queue.empty()) {
    // swap, not move-assignment: Boost 1.81's any_completion_handler::operator=(&&) wraps
    // the handler in itself and recurses without end (fixed in 1.82).
    box.waiter.swap(done);
    return;
  }
  Deliver(std::move(done), Status::kOk, box.queue.take().message);
}

void LayerBase::DropExpired(Mailbox& box) {
  const double now = Now();
  while (!box.queue.empty() && box.queue.front().expires < now) {
    box.queue.pop();
    stats_.expired.fetch_add(1, std::memory_order_relaxed);
  }
}

void LayerBase::Finish(Completion done, Status status) {
  switch (status) {
    case Status::kChannelFull:
      stats_.channel_full.fetch_add(1, std::memory_order_relaxed);
      break;
    case Status::kTooLarge:
      stats_.too_large.fetch_add(1, std::memory_order_relaxed);
      break;
    case Status::kUnavailable:
      stats_.unavailable.fetch_add(1, std::memory_order_relaxed);
      break;
    case Status::kInvalid:
      stats_.invalid.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      break;
  }
  // Through the layer's loop, then dispatched to the handler's executor (if it has one).
  boost::asio::post(executor_, boost::asio::append(std::move(done), status));
}

void LayerBase::Deliver(ReceiveCompletion done, Status status, MessagePtr message) {
  if (status == Status::kOk) stats_.received.fetch_add(1, std::memory_order_relaxed);
  if (status == Status::kInvalid) stats_.invalid.fetch_add(1, std::memory_order_relaxed);
  boost::asio::post(executor_, boost::asio::append(std::move(done), status, std::move(message)));
}

}  // namespace sluice::layer
