#include "gateway/layer_ops.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <optional>

#include "layer/message.h"

namespace sluice::gateway {
namespace net = boost::asio;

v1::LayerResult::Status ToProto(layer::Status status) {
  switch (status) {
    case layer::Status::kOk:
      return v1::LayerResult::STATUS_OK;
    case layer::Status::kChannelFull:
      return v1::LayerResult::STATUS_CHANNEL_FULL;
    case layer::Status::kTooLarge:
      return v1::LayerResult::STATUS_TOO_LARGE;
    case layer::Status::kUnavailable:
      return v1::LayerResult::STATUS_UNAVAILABLE;
    case layer::Status::kInvalid:
    case layer::Status::kCancelled:
      return v1::LayerResult::STATUS_INVALID;
  }
  return v1::LayerResult::STATUS_INVALID;
}

void RunLayerOp(layer::ChannelLayer& layer, const std::string& member, v1::LayerOp& op,
                const net::any_io_executor& executor,
                std::function<void(v1::LayerResult::Status)> done) {
  auto completion = net::bind_executor(
      executor, [done = std::move(done)](layer::Status status) { done(ToProto(status)); });
  const auto refuse = [&](layer::Status status) {
    net::post(executor,
              [completion = std::move(completion), status]() mutable { completion(status); });
  };
  // The worker already refused messages over the limit; a peer that did not is told so
  // before the decoder spends time on the bytes.
  const auto decode = [](const std::string& bytes) -> std::optional<layer::Message> {
    if (bytes.size() > layer::kMaxMessageBytes) return std::nullopt;
    return layer::DecodeMsgpack(bytes);
  };
  switch (op.op_case()) {
    case v1::LayerOp::kSend: {
      if (op.send().message().size() > layer::kMaxMessageBytes) {
        return refuse(layer::Status::kTooLarge);
      }
      auto message = decode(op.send().message());
      if (!message) return refuse(layer::Status::kInvalid);
      return layer.Send(std::move(*op.mutable_send()->mutable_channel()), *std::move(message),
                        std::move(completion));
    }
    case v1::LayerOp::kGroupSend: {
      if (op.group_send().message().size() > layer::kMaxMessageBytes) {
        return refuse(layer::Status::kTooLarge);
      }
      auto message = decode(op.group_send().message());
      if (!message) return refuse(layer::Status::kInvalid);
      return layer.GroupSend(std::move(*op.mutable_group_send()->mutable_group()),
                             *std::move(message), std::move(completion));
    }
    case v1::LayerOp::kGroupAdd:
      if (member.empty()) return refuse(layer::Status::kInvalid);
      return layer.GroupAdd(std::move(*op.mutable_group_add()->mutable_group()), member,
                            std::move(completion));
    case v1::LayerOp::kGroupDiscard:
      if (member.empty()) return refuse(layer::Status::kInvalid);
      return layer.GroupDiscard(std::move(*op.mutable_group_discard()->mutable_group()), member,
                                std::move(completion));
    case v1::LayerOp::OP_NOT_SET:
      break;
  }
  refuse(layer::Status::kInvalid);
}

}  // namespace sluice::gateway
