#pragma once

#include <string>
#include <unordered_map>

#include "layer/layer_base.h"

namespace sluice::layer {

/// The default layer: one gateway, no Redis. Channels' InMemoryChannelLayer semantics with
/// every store bounded:
/// - a local channel's queue holds at most its capacity (Options::capacity, or the first
///   matching CapacityRule); a named channel's too, and at most max_named_channels named
///   channels hold messages at once (a send that would make one more gets kChannelFull);
/// - messages expire `expiry` after they were sent (dropped unread, counted); memberships
///   `group_expiry` after they were last added; at most max_memberships memberships, and
///   max_groups_per_channel per local channel (kChannelFull past either);
/// - every message is at most kMaxMessageBytes encoded; a group send shares one copy among
///   its members.
/// Thread-safety and lifetime: as ChannelLayer.
class InMemoryLayer final : public LayerBase {
 public:
  InMemoryLayer(const Executor& executor, Options options);

  void Send(std::string channel, Message message, Completion done) override;
  void GroupAdd(std::string group, std::string channel, Completion done) override;
  void GroupDiscard(std::string group, std::string channel, Completion done) override;
  void GroupSend(std::string group, Message message, Completion done) override;

 private:
  void ReceiveNamed(std::string channel, ReceiveCompletion done) override;
  void CancelNamed(const std::string& channel) override;
  void LeaveGroups(const std::string& channel, std::vector<std::string> groups) override;

  Status Put(const std::string& channel, const MessagePtr& message);
  void Discard(const std::string& group, const std::string& channel);

  std::unordered_map<std::string, Mailbox> named_;
  // group → member channel → when it was last added (Unix seconds)
  std::unordered_map<std::string, std::unordered_map<std::string, double>> groups_;
  size_t memberships_ = 0;
};

}  // namespace sluice::layer
