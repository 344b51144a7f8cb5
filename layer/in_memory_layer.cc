#include "layer/in_memory_layer.h"

#include <algorithm>

#include "layer/message.h"

namespace sluice::layer {

InMemoryLayer::InMemoryLayer(const Executor& executor, Options options)
    : LayerBase(executor, std::move(options)) {
  stats_.connected.store(1, std::memory_order_relaxed);
}

void InMemoryLayer::Send(std::string channel, Message message, Completion done) {
  Run([this, channel = std::move(channel), message = std::move(message),
       done = std::move(done)]() mutable {
    if (!ValidChannelName(channel)) return Finish(std::move(done), Status::kInvalid);
    if (Status status = CheckMessage(message); status != Status::kOk) {
      return Finish(std::move(done), status);
    }
    const Status status = Put(channel, std::make_shared<const Message>(std::move(message)));
    if (status == Status::kOk) stats_.sent.fetch_add(1, std::memory_order_relaxed);
    Finish(std::move(done), status);
  });
}

Status InMemoryLayer::Put(const std::string& channel, const MessagePtr& message) {
  const double expires = Now() + Expiry();
  if (IsLocal(channel)) {
    Mailbox* box = FindLocal(channel);
    if (!box) {
      stats_.dropped_closed.fetch_add(1, std::memory_order_relaxed);
      return Status::kOk;  // as on Redis: the sender cannot tell a closed channel
    }
    return Offer(*box, message, expires) ? Status::kOk : Status::kChannelFull;
  }
  auto it = named_.find(channel);
  if (it == named_.end()) {
    if (named_.size() >= options_.max_named_channels) return Status::kChannelFull;
    it = named_.try_emplace(channel, CapacityOf(channel)).first;
  }
  const bool taken = Offer(it->second, message, expires);
  if (it->second.queue.empty() && !it->second.waiter) named_.erase(it);
  return taken ? Status::kOk : Status::kChannelFull;
}

void InMemoryLayer::ReceiveNamed(std::string channel, ReceiveCompletion done) {
  auto it = named_.try_emplace(channel, CapacityOf(channel)).first;
  Serve(it->second, std::move(done));
  if (it->second.queue.empty() && !it->second.waiter) named_.erase(it);
}

void InMemoryLayer::CancelNamed(const std::string& channel) {
  auto it = named_.find(channel);
  if (it == named_.end() || !it->second.waiter) return;
  Deliver(std::move(it->second.waiter), Status::kCancelled);
  if (it->second.queue.empty()) named_.erase(it);
}

void InMemoryLayer::GroupAdd(std::string group, std::string channel, Completion done) {
  Run([this, group = std::move(group), channel = std::move(channel),
       done = std::move(done)]() mutable {
    if (!ValidGroupName(group) || !ValidChannelName(channel)) {
      return Finish(std::move(done), Status::kInvalid);
    }
    auto& members = groups_[group];
    auto it = members.find(channel);
    if (it != members.end()) {
      it->second = Now();
      return Finish(std::move(done), Status::kOk);
    }
    Mailbox* box = IsLocal(channel) ? FindLocal(channel) : nullptr;
    if (memberships_ >= options_.max_memberships ||
        (box && box->groups.size() >= options_.max_groups_per_channel)) {
      if (members.empty()) groups_.erase(group);
      return Finish(std::move(done), Status::kChannelFull);
    }
    members.emplace(channel, Now());
    ++memberships_;
    if (box) box->groups.push_back(group);
    Finish(std::move(done), Status::kOk);
  });
}

void InMemoryLayer::GroupDiscard(std::string group, std::string channel, Completion done) {
  Run([this, group = std::move(group), channel = std::move(channel),
       done = std::move(done)]() mutable {
    if (!ValidGroupName(group) || !ValidChannelName(channel)) {
      return Finish(std::move(done), Status::kInvalid);
    }
    Discard(group, channel);
    if (Mailbox* box = IsLocal(channel) ? FindLocal(channel) : nullptr) {
      std::erase(box->groups, group);
    }
    Finish(std::move(done), Status::kOk);
  });
}

void InMemoryLayer::Discard(const std::string& group, const std::string& channel) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return;
  memberships_ -= it->second.erase(channel);
  if (it->second.empty()) groups_.erase(it);
}

void InMemoryLayer::LeaveGroups(const std::string& channel, std::vector<std::string> groups) {
  for (const std::string& group : groups) Discard(group, channel);
}

void InMemoryLayer::GroupSend(std::string group, Message message, Completion done) {
  Run([this, group = std::move(group), message = std::move(message),
       done = std::move(done)]() mutable {
    if (!ValidGroupName(group)) return Finish(std::move(done), Status::kInvalid);
    if (Status status = CheckMessage(message); status != Status::kOk) {
      return Finish(std::move(done), status);
    }
    stats_.group_sends.fetch_add(1, std::memory_order_relaxed);
    auto it = groups_.find(group);
    if (it == groups_.end()) return Finish(std::move(done), Status::kOk);
    const double joined_after = Now() - static_cast<double>(options_.group_expiry.count());
    const auto shared = std::make_shared<const Message>(std::move(message));
    auto& members = it->second;
    for (auto member = members.begin(); member != members.end();) {
      if (member->second < joined_after) {
        if (Mailbox* box = IsLocal(member->first) ? FindLocal(member->first) : nullptr) {
          std::erase(box->groups, group);
        }
        member = members.erase(member);
        --memberships_;
        continue;
      }
      if (Put(member->first, shared) == Status::kChannelFull) {
        stats_.group_skipped.fetch_add(1, std::memory_order_relaxed);
      }
      ++member;
    }
    if (members.empty()) groups_.erase(it);
    Finish(std::move(done), Status::kOk);
  });
}

}  // namespace sluice::layer
