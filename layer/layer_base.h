#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/bounded_fifo.h"
#include "layer/channel_layer.h"

namespace sluice::layer {

/// What both backends share: this gateway's local channels (their queues, their pending
/// Receive, the groups they joined), names, capacities, completions and counters. Everything
/// but the public entry points runs on the executor.
class LayerBase : public ChannelLayer {
 public:
  using Executor = boost::asio::io_context::executor_type;

  LayerBase(const Executor& executor, Options options);

  std::string NewChannel(uint64_t id) override;
  std::string ChannelName(uint64_t id) const override;
  void CloseChannel(std::string channel) override;
  void Receive(std::string channel, ReceiveCompletion done) override;
  const Stats& stats() const override { return stats_; }

 protected:
  struct Queued {
    double expires;  // Unix seconds
    MessagePtr message;
  };
  /// A channel's queue (bounded by its capacity) and the one Receive waiting on it.
  struct Mailbox {
    explicit Mailbox(size_t capacity) : queue(capacity) {}
    BoundedFifo<Queued> queue;
    ReceiveCompletion waiter;
    std::vector<std::string> groups;  // local channels: joined through this layer
  };

  // Receives on named channels and closes of local ones, which the backends do differently.
  virtual void ReceiveNamed(std::string channel, ReceiveCompletion done) = 0;
  virtual void CancelNamed(const std::string& channel) = 0;
  virtual void LeaveGroups(const std::string& channel, std::vector<std::string> groups) = 0;

  bool IsLocal(std::string_view channel) const {
    return channel.size() > local_prefix_.size() && channel.starts_with(local_prefix_);
  }
  size_t CapacityOf(std::string_view channel) const;
  double Now() const { return options_.clock(); }
  double Expiry() const { return static_cast<double>(options_.expiry.count()); }
  Mailbox* FindLocal(const std::string& channel);

  /// Hands `message` to the mailbox's waiter, or queues it. A full queue refuses it (false),
  /// or with `drop_oldest` drops its oldest message (counted) to make room.
  bool Offer(Mailbox& box, MessagePtr message, double expires, bool drop_oldest = false);
  /// Completes `done` with the oldest unexpired message, or parks it as the waiter.
  void Serve(Mailbox& box, ReceiveCompletion done);
  /// Drops expired messages at the front of the queue (counted).
  void DropExpired(Mailbox& box);

  /// Posts a completion to its executor and counts failures.
  void Finish(Completion done, Status status);
  void Deliver(ReceiveCompletion done, Status status, MessagePtr message = nullptr);
  template <class F>
  void Run(F&& f) {
    boost::asio::post(executor_, std::forward<F>(f));
  }

  Executor executor_;
  Options options_;
  std::string local_prefix_;  // "specific.<gateway>!"
  Stats stats_;
  std::unordered_map<std::string, Mailbox> local_;
};

}  // namespace sluice::layer
