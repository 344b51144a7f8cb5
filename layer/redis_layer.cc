#include "layer/redis_layer.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "layer/message.h"

namespace sluice::layer {
namespace {

// channels_redis `send`, in one atomic round trip: drop expired messages, refuse at capacity,
// add, refresh the key's expiry. KEYS[1] queue; ARGV: cutoff, capacity, score, member, expiry.
constexpr std::string_view kSendScript = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
)lua";

// channels_redis `group_send`'s script, with its expiry pipeline folded in; returns the
// indexes of the keys that were full. KEYS: queues; ARGV: one member per key, one capacity per
// key, score, expiry, cutoff.
constexpr std::string_view kGroupSendScript = R"lua(
local n = #KEYS
local score, expiry, cutoff = ARGV[2 * n + 1], ARGV[2 * n + 2], ARGV[2 * n + 3]
local full = {}
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, cutoff)
  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
    redis.call('ZADD', KEYS[i], score, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    full[#full + 1] = i
  end
end
return full
)lua";

// Members per ZADD / ZREM when groups are restored.
constexpr size_t kRestoreBatch = 512;

std::string_view Str(const redisReply* reply) {
  return {reply->str, static_cast<size_t>(reply->len)};
}

bool IsArray(const redisReply* reply) { return reply && reply->type == REDIS_REPLY_ARRAY; }

void LogError(std::string_view what, const redisReply* reply) {
  if (reply && reply->type == REDIS_REPLY_ERROR) {
    std::cerr << "channel layer: redis " << what << ": " << Str(reply) << "\n";
  }
}

}  // namespace

std::optional<RedisOptions> ParseRedisUrl(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  url.remove_prefix(kScheme.size());
  RedisOptions options;
  if (size_t slash = url.find('/'); slash != std::string_view::npos) {
    std::string_view db = url.substr(slash + 1);
    url = url.substr(0, slash);
    if (!db.empty()) {
      auto [end, error] = std::from_chars(db.data(), db.data() + db.size(), options.db);
      if (error != std::errc() || end != db.data() + db.size() || options.db < 0) {
        return std::nullopt;
      }
    }
  }
  if (size_t colon = url.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = url.substr(colon + 1);
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), options.port);
    if (error != std::errc() || end != port.data() + port.size() || options.port <= 0 ||
        options.port > 65535) {
      return std::nullopt;
    }
    url = url.substr(0, colon);
  }
  if (url.empty() || url.find('@') != std::string_view::npos) return std::nullopt;
  options.host = std::string(url);
  return options;
}

RedisLayer::RedisLayer(const Executor& executor, Options options, RedisOptions redis)
    : LayerBase(executor, std::move(options)),
      redis_(std::move(redis)),
      local_key_(options_.prefix + local_prefix_),
      command_(executor),
      blocking_(executor),
      retry_(executor),
      backoff_(redis_.backoff_min),
      random_(std::random_device{}()) {
  Run([this] { Connect(); });
}

RedisLayer::~RedisLayer() = default;

// --- connection life -------------------------------------------------------------------

void RedisLayer::Connect() {
  const uint64_t generation = ++generation_;
  up_ = 0;
  auto on_state = [this, generation](bool up) { OnState(generation, up); };
  command_.Connect(redis_.host, redis_.port, redis_.db, redis_.connect_timeout, on_state);
  blocking_.Connect(redis_.host, redis_.port, redis_.db, redis_.connect_timeout, on_state);
}

void RedisLayer::OnState(uint64_t generation, bool up) {
  if (generation != generation_) return;
  if (!up) return Lost();
  if (++up_ == 2) Ready();
}

void RedisLayer::Ready() {
  const uint64_t generation = generation_;
  const std::string_view args[] = {"CLIENT", "ID"};
  blocking_.Command(args, redis_.reply_timeout, [this, generation](const redisReply* reply) {
    if (generation != generation_) return;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return blocking_.Close();
    blocking_id_ = std::to_string(reply->integer);
    available_ = true;
    stats_.connected.store(1, std::memory_order_relaxed);
    if (options_.on_connection) options_.on_connection(true);
    if (ever_available_) stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
    ever_available_ = true;
    backoff_ = redis_.backoff_min;
    // Before anything else on the new connection, so every later operation sees the groups.
    Restore();
    for (auto& [channel, waiter] : waiters_) Poll(channel);
    Pop();
  });
}

// Redis may have lost everything (a restart without persistence), or kept everything (a
// network break): make the leaves that failed meanwhile, then add this gateway's channels to
// their groups again, with a fresh join time. Bounded by the memberships the layer allows
// (local channels × max_groups_per_channel), so these bypass max_pending.
void RedisLayer::Restore() {
  auto leaves = std::move(late_leaves_);
  late_leaves_.clear();
  late_leave_count_ = 0;
  for (auto& [group, channels] : leaves) {
    for (size_t at = 0; at < channels.size(); at += kRestoreBatch) {
      auto batch = std::make_shared<std::vector<std::string>>(
          channels.begin() + static_cast<ptrdiff_t>(at),
          channels.begin() + static_cast<ptrdiff_t>(std::min(channels.size(), at + kRestoreBatch)));
      const std::string key = GroupKey(group);
      std::vector<std::string_view> args = {"ZREM", key};
      args.insert(args.end(), batch->begin(), batch->end());
      auto on_reply = [this, group = group, batch](const redisReply* reply) {
        if (reply && reply->type == REDIS_REPLY_INTEGER) {
          stats_.restored_leaves.fetch_add(batch->size(), std::memory_order_relaxed);
          return;
        }
        LogError("group_discard", reply);
        for (const std::string& channel : *batch) LeaveLater(group, channel);  // next time
      };
      if (!command_.Command(args, redis_.reply_timeout, on_reply)) on_reply(nullptr);
    }
  }
  std::unordered_map<std::string, std::vector<std::string_view>> members;
  for (const auto& [channel, box] : local_) {
    for (const std::string& group : box.groups) members[group].push_back(channel);
  }
  const std::string score = Score();
  const std::string expiry = std::to_string(options_.group_expiry.count());
  for (const auto& [group, channels] : members) {
    const std::string key = GroupKey(group);
    for (size_t at = 0; at < channels.size(); at += kRestoreBatch) {
      const size_t n = std::min(channels.size() - at, kRestoreBatch);
      std::vector<std::string_view> args = {"ZADD", key};
      for (size_t i = at; i < at + n; ++i) {
        args.push_back(score);
        args.push_back(channels[i]);
      }
      const bool sent =
          command_.Command(args, redis_.reply_timeout, [this, n](const redisReply* reply) {
            if (reply && reply->type == REDIS_REPLY_INTEGER) {
              stats_.restored_memberships.fetch_add(n, std::memory_order_relaxed);
            } else {
              LogError("group_add", reply);  // lost again: the next Ready restores them
            }
          });
      if (!sent) return;
    }
    const std::string_view expire[] = {"EXPIRE", key, expiry};
    command_.Command(expire, redis_.reply_timeout,
                     [](const redisReply* reply) { LogError("group_add", reply); });
  }
}

void RedisLayer::LeaveLater(const std::string& group, const std::string& channel) {
  if (late_leave_count_ >= redis_.max_late_leaves) return;
  late_leaves_[group].push_back(channel);
  ++late_leave_count_;
}

void RedisLayer::Lost() {
  if (available_) {
    if (options_.on_connection) {
      options_.on_connection(false);
    } else {
      std::cerr << "channel layer: lost redis at " << redis_.host << ":" << redis_.port
                << "; reconnecting\n";
    }
  }
  ++generation_;  // what the old connections still report is ignored
  available_ = false;
  blocked_ = false;
  stats_.connected.store(0, std::memory_order_relaxed);
  for (auto& [channel, waiter] : waiters_) waiter.polling = false;
  command_.Close();  // pending operations complete with kUnavailable
  blocking_.Close();
  // Jittered (half to all of the backoff), so gateways that lost one Redis come back spread.
  const auto low = backoff_.count() / 2;
  retry_.expires_after(std::chrono::milliseconds(
      low + static_cast<int64_t>(random_() % static_cast<uint64_t>(backoff_.count() - low + 1))));
  backoff_ = std::min(backoff_ * 2, redis_.backoff_max);
  retry_.async_wait([this](boost::system::error_code error) {
    if (!error) Connect();
  });
}

bool RedisLayer::Call(std::span<const std::string_view> args,
                      RedisConnection::ReplyHandler on_reply) {
  if (!available_ || command_.pending() >= redis_.max_pending) return false;
  return command_.Command(args, redis_.reply_timeout, std::move(on_reply));
}

void RedisLayer::Fire(std::span<const std::string_view> args) {
  Call(args, [](const redisReply* reply) { LogError("command", reply); });
}

// --- what is sent ------------------------------------------------------------------------

std::string RedisLayer::Member(const Message& message) {
  std::string member(kRandomPrefixBytes, '\0');
  const uint64_t a = random_(), b = random_();
  std::memcpy(member.data(), &a, 8);
  std::memcpy(member.data() + 8, &b, kRandomPrefixBytes - 8);
  member += EncodeMsgpack(message);
  return member;
}

std::string RedisLayer::Score() {
  // Unix seconds with microseconds, as channels_redis' time.time(); strictly increasing, so
  // two messages from this gateway to one queue are never reordered by their random prefix.
  const auto now_us = static_cast<int64_t>(std::llround(Now() * 1e6));
  last_score_us_ = std::max(now_us, last_score_us_ + 1);
  char text[32];
  std::snprintf(text, sizeof text, "%lld.%06lld",
                static_cast<long long>(last_score_us_ / 1'000'000),
                static_cast<long long>(last_score_us_ % 1'000'000));
  return text;
}

void RedisLayer::Send(std::string channel, Message message, Completion done) {
  Run([this, channel = std::move(channel), message = std::move(message),
       done = std::move(done)]() mutable {
    if (!ValidChannelName(channel)) return Finish(std::move(done), Status::kInvalid);
    if (Status status = CheckMessage(message); status != Status::kOk) {
      return Finish(std::move(done), status);
    }
    if (!Available()) return Finish(std::move(done), Status::kUnavailable);
    if (channel.find('!') != std::string::npos) message[kChannelField] = channel;
    const std::string key = ChannelKey(channel);
    const std::string cutoff =
        std::to_string(static_cast<int64_t>(Now()) - options_.expiry.count());
    const std::string capacity = std::to_string(CapacityOf(channel));
    const std::string score = Score();
    const std::string member = Member(message);
    const std::string expiry = std::to_string(options_.expiry.count());
    const std::string_view args[] = {"EVAL",   kSendScript, "1",    key,   cutoff,
                                     capacity, score,       member, expiry};
    auto shared = std::make_shared<Completion>(std::move(done));
    const bool sent = Call(args, [this, shared](const redisReply* reply) {
      if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        LogError("send", reply);
        return Finish(std::move(*shared), Status::kUnavailable);
      }
      if (reply->integer != 1) return Finish(std::move(*shared), Status::kChannelFull);
      stats_.sent.fetch_add(1, std::memory_order_relaxed);
      Finish(std::move(*shared), Status::kOk);
    });
    if (!sent) Finish(std::move(*shared), Status::kUnavailable);
  });
}

void RedisLayer::GroupAdd(std::string group, std::string channel, Completion done) {
  Run([this, group = std::move(group), channel = std::move(channel),
       done = std::move(done)]() mutable {
    if (!ValidGroupName(group) || !ValidChannelName(channel)) {
      return Finish(std::move(done), Status::kInvalid);
    }
    if (Mailbox* box = IsLocal(channel) ? FindLocal(channel) : nullptr) {
      if (box->groups.size() >= options_.max_groups_per_channel &&
          std::find(box->groups.begin(), box->groups.end(), group) == box->groups.end()) {
        return Finish(std::move(done), Status::kChannelFull);
      }
    }
    if (!Available()) return Finish(std::move(done), Status::kUnavailable);
    const std::string key = GroupKey(group);
    const std::string score = Score();
    const std::string expiry = std::to_string(options_.group_expiry.count());
    const std::string_view add[] = {"ZADD", key, score, channel};
    const std::string_view expire[] = {"EXPIRE", key, expiry};
    auto shared = std::make_shared<Completion>(std::move(done));
    const bool sent = Call(add, [](const redisReply* reply) { LogError("group_add", reply); }) &&
                      Call(expire, [this, shared, group, channel](const redisReply* reply) {
                        if (!reply || reply->type == REDIS_REPLY_ERROR) {
                          LogError("group_add", reply);
                          return Finish(std::move(*shared), Status::kUnavailable);
                        }
                        Mailbox* box = IsLocal(channel) ? FindLocal(channel) : nullptr;
                        if (box && std::find(box->groups.begin(), box->groups.end(), group) ==
                                       box->groups.end()) {
                          box->groups.push_back(group);
                        }
                        Finish(std::move(*shared), Status::kOk);
                      });
    if (!sent) Finish(std::move(*shared), Status::kUnavailable);
  });
}

void RedisLayer::GroupDiscard(std::string group, std::string channel, Completion done) {
  Run([this, group = std::move(group), channel = std::move(channel),
       done = std::move(done)]() mutable {
    if (!ValidGroupName(group) || !ValidChannelName(channel)) {
      return Finish(std::move(done), Status::kInvalid);
    }
    // A channel of this gateway's leaves for sure: not joined again on reconnect, and left
    // then if Redis is away now (the caller still hears kUnavailable).
    Mailbox* box = IsLocal(channel) ? FindLocal(channel) : nullptr;
    bool member = false;
    if (box) member = std::erase(box->groups, group) > 0;
    if (!Available()) {
      if (member) LeaveLater(group, channel);
      return Finish(std::move(done), Status::kUnavailable);
    }
    const std::string key = GroupKey(group);
    const std::string_view args[] = {"ZREM", key, channel};
    auto shared = std::make_shared<Completion>(std::move(done));
    const bool sent = Call(args, [this, shared, member, group, channel](const redisReply* reply) {
      const bool ok = reply && reply->type != REDIS_REPLY_ERROR;
      if (!ok) {
        LogError("group_discard", reply);
        if (member && !reply) LeaveLater(group, channel);
      }
      Finish(std::move(*shared), ok ? Status::kOk : Status::kUnavailable);
    });
    if (!sent) {
      if (member) LeaveLater(group, channel);
      Finish(std::move(*shared), Status::kUnavailable);
    }
  });
}

void RedisLayer::LeaveGroups(const std::string& channel, std::vector<std::string> groups) {
  for (const std::string& group : groups) {
    const std::string key = GroupKey(group);
    const std::string_view args[] = {"ZREM", key, channel};
    const bool sent = Call(args, [this, group, channel](const redisReply* reply) {
      LogError("group_discard", reply);
      if (!reply) LeaveLater(group, channel);  // the connection went first
    });
    if (!sent) LeaveLater(group, channel);
  }
}

void RedisLayer::GroupSend(std::string group, Message message, Completion done) {
  Run([this, group = std::move(group), message = std::move(message),
       done = std::move(done)]() mutable {
    if (!ValidGroupName(group)) return Finish(std::move(done), Status::kInvalid);
    if (Status status = CheckMessage(message); status != Status::kOk) {
      return Finish(std::move(done), status);
    }
    if (!Available()) return Finish(std::move(done), Status::kUnavailable);
    const std::string key = GroupKey(group);
    const std::string cutoff =
        std::to_string(static_cast<int64_t>(Now()) - options_.group_expiry.count());
    const std::string_view trim[] = {"ZREMRANGEBYSCORE", key, "0", cutoff};
    const std::string_view range[] = {"ZRANGE", key, "0", "-1"};
    struct State {
      Completion done;
      Message message;
    };
    auto state = std::make_shared<State>(State{std::move(done), std::move(message)});
    const bool sent =
        Call(trim, [](const redisReply* reply) { LogError("group_send", reply); }) &&
        Call(range, [this, state](const redisReply* reply) {
          if (!IsArray(reply)) {
            LogError("group_send", reply);
            return Finish(std::move(state->done), Status::kUnavailable);
          }
          // One message per destination key, listing the members behind it, in the order
          // channels_redis builds them.
          std::vector<std::string> keys;
          std::vector<Message> channels;
          std::unordered_map<std::string, size_t> index;
          for (size_t i = 0; i < reply->elements; ++i) {
            const redisReply* element = reply->element[i];
            if (element->type != REDIS_REPLY_STRING) continue;
            const std::string channel(Str(element));
            if (!ValidChannelName(channel)) continue;  // not ours to judge; cannot be keyed
            auto [it, added] = index.try_emplace(ChannelKey(channel), keys.size());
            if (added) {
              keys.push_back(it->first);
              channels.push_back(Message::array());
            }
            channels[it->second].push_back(channel);
          }
          if (keys.empty()) {
            stats_.group_sends.fetch_add(1, std::memory_order_relaxed);
            return Finish(std::move(state->done), Status::kOk);
          }
          std::vector<std::string> args = {"EVAL", std::string(kGroupSendScript),
                                           std::to_string(keys.size())};
          args.insert(args.end(), keys.begin(), keys.end());
          for (const Message& members : channels) {
            state->message[kChannelField] = members;
            args.push_back(Member(state->message));
          }
          for (const Message& members : channels) {
            args.push_back(std::to_string(CapacityOf(members[0].get_ref<const std::string&>())));
          }
          args.push_back(Score());
          args.push_back(std::to_string(options_.expiry.count()));
          args.push_back(std::to_string(static_cast<int64_t>(Now()) - options_.expiry.count()));
          auto counts = std::make_shared<std::vector<size_t>>();
          for (const Message& members : channels) counts->push_back(members.size());
          const std::vector<std::string_view> views(args.begin(), args.end());
          const bool fanned = Call(views, [this, state, counts](const redisReply* reply) {
            if (!IsArray(reply)) {
              LogError("group_send", reply);
              return Finish(std::move(state->done), Status::kUnavailable);
            }
            uint64_t skipped = 0;
            for (size_t i = 0; i < reply->elements; ++i) {
              const long long at = reply->element[i]->integer;  // 1-based key index
              if (at >= 1 && static_cast<size_t>(at) <= counts->size()) {
                skipped += (*counts)[static_cast<size_t>(at) - 1];
              }
            }
            stats_.group_skipped.fetch_add(skipped, std::memory_order_relaxed);
            stats_.group_sends.fetch_add(1, std::memory_order_relaxed);
            Finish(std::move(state->done), Status::kOk);
          });
          if (!fanned) Finish(std::move(state->done), Status::kUnavailable);
        });
    if (!sent) Finish(std::move(state->done), Status::kUnavailable);
  });
}

// --- what is received ----------------------------------------------------------------------

void RedisLayer::ReceiveNamed(std::string channel, ReceiveCompletion done) {
  if (waiters_.contains(channel)) return Deliver(std::move(done), Status::kInvalid);
  waiters_.try_emplace(channel, Waiter{std::move(done)});
  if (Available()) Poll(channel);
}

void RedisLayer::CancelNamed(const std::string& channel) {
  auto it = waiters_.find(channel);
  if (it == waiters_.end()) return;
  Deliver(std::move(it->second.done), Status::kCancelled);
  waiters_.erase(it);
  // Take its key out of the blocking pop; a message popped for it meanwhile goes back
  // (PutBack, with its score: its place in the queue is kept).
  const std::string key = options_.prefix + channel;
  if (blocked_ &&
      std::find(blocked_keys_.begin(), blocked_keys_.end(), key) != blocked_keys_.end()) {
    const std::string_view args[] = {"CLIENT", "UNBLOCK", blocking_id_};
    Fire(args);
  }
}

void RedisLayer::Poll(const std::string& channel) {
  auto it = waiters_.find(channel);
  if (it == waiters_.end()) return;
  it->second.polling = true;
  const std::string key = options_.prefix + channel;
  const std::string_view args[] = {"ZPOPMIN", key};
  const bool sent = Call(args, [this, channel, key](const redisReply* reply) {
    auto it = waiters_.find(channel);
    if (!reply) {
      if (it != waiters_.end()) it->second.polling = false;  // polled again once reconnected
      return;
    }
    if (IsArray(reply) && reply->elements == 2) {
      const std::string_view member = Str(reply->element[0]);
      const std::string_view score = Str(reply->element[1]);
      if (it == waiters_.end()) return PutBack(key, member, score);
      it->second.polling = false;
      Popped(key, member, score);
      if (waiters_.contains(channel)) Poll(channel);  // that one was expired or unreadable
      return;
    }
    LogError("receive", reply);
    if (it == waiters_.end()) return;
    it->second.polling = false;  // the queue is empty: wait in BZPOPMIN
    Unblock();
  });
  if (!sent) {
    it->second.polling = false;
    Unblock();
  }
}

void RedisLayer::Unblock() {
  if (!blocked_) return;  // the next BZPOPMIN takes the current keys
  for (const auto& [channel, waiter] : waiters_) {
    if (waiter.polling) continue;
    const std::string key = options_.prefix + channel;
    if (std::find(blocked_keys_.begin(), blocked_keys_.end(), key) == blocked_keys_.end()) {
      const std::string_view args[] = {"CLIENT", "UNBLOCK", blocking_id_};
      Fire(args);
      return;
    }
  }
}

void RedisLayer::Pop() {
  if (!Available() || blocked_) return;
  blocked_keys_.assign(1, local_key_);
  for (const auto& [channel, waiter] : waiters_) {
    if (!waiter.polling) blocked_keys_.push_back(options_.prefix + channel);
  }
  std::vector<std::string_view> args = {"BZPOPMIN"};
  args.insert(args.end(), blocked_keys_.begin(), blocked_keys_.end());
  const std::string timeout = std::to_string(redis_.block_timeout.count());
  args.push_back(timeout);
  const uint64_t generation = generation_;
  blocked_ = blocking_.Command(args, redis_.block_timeout + redis_.reply_timeout,
                               [this, generation](const redisReply* reply) {
                                 if (generation != generation_ || !reply) return;
                                 blocked_ = false;
                                 if (IsArray(reply) && reply->elements == 3) {
                                   const std::string_view key = Str(reply->element[0]);
                                   Popped(key, Str(reply->element[1]), Str(reply->element[2]));
                                   if (key == local_key_) return Drain();
                                   return Pop();
                                 }
                                 if (reply->type == REDIS_REPLY_NIL)
                                   return Pop();  // timed out, or unblocked
                                 LogError("receive", reply);
                                 blocking_.Close();  // reconnects after a backoff
                               });
}

void RedisLayer::Drain() {
  const std::string count = std::to_string(redis_.pop_batch);
  const std::string_view args[] = {"ZPOPMIN", local_key_, count};
  const uint64_t generation = generation_;
  blocking_.Command(args, redis_.reply_timeout, [this, generation](const redisReply* reply) {
    if (generation != generation_ || !reply) return;
    if (IsArray(reply)) {
      for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        Popped(local_key_, Str(reply->element[i]), Str(reply->element[i + 1]));
      }
      if (reply->elements / 2 >= redis_.pop_batch) return Drain();
    }
    Pop();
  });
}

void RedisLayer::PutBack(std::string_view key, std::string_view member, std::string_view score) {
  const std::string_view args[] = {"ZADD", key, score, member};
  Fire(args);
}

void RedisLayer::Popped(std::string_view key, std::string_view member, std::string_view score) {
  const bool local = key == local_key_;
  std::string channel;
  if (!local) {
    channel = std::string(key.substr(options_.prefix.size()));
    auto it = waiters_.find(channel);
    if (it == waiters_.end() || it->second.polling) return PutBack(key, member, score);
  }
  const double sent = std::strtod(std::string(score).c_str(), nullptr);
  const double expires = sent + Expiry();
  if (expires < Now()) {
    stats_.expired.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::optional<Message> message;
  if (member.size() >= kRandomPrefixBytes && member.size() <= kMaxMessageBytes * 2) {
    message = DecodeMsgpack(member.substr(kRandomPrefixBytes));
  }
  if (!message) {
    stats_.decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Message targets;
  if (auto field = message->find(kChannelField); field != message->end()) {
    targets = std::move(*field);
    message->erase(field);
  }
  auto shared = std::make_shared<const Message>(std::move(*message));
  if (!local) {
    auto it = waiters_.find(channel);
    ReceiveCompletion done(std::move(it->second.done));
    waiters_.erase(it);
    return Deliver(std::move(done), Status::kOk, std::move(shared));
  }
  if (targets.is_string()) targets = Message::array({std::move(targets)});
  if (!targets.is_array()) {
    stats_.decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  for (const Message& target : targets) {
    Mailbox* box = target.is_string() ? FindLocal(target.get_ref<const std::string&>()) : nullptr;
    if (!box) {
      stats_.dropped_closed.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    Offer(*box, shared, expires, /*drop_oldest=*/true);
  }
}

}  // namespace sluice::layer
