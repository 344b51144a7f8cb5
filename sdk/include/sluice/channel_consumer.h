#pragma once

#include <string>

#include "sluice/consumer.h"

namespace sluice {

/// A background-channel consumer (what Channels' `runworker` runs): one instance per
/// message sent to a named channel it is routed from (Router::Channel("thumbnails", …)).
/// Register handlers with On() in the constructor; Run() calls the one for the message's
/// type. Returning acknowledges the message; a message whose worker is lost before that is
/// delivered again, to another worker, with the same delivery_id() (at least once: make the
/// handler idempotent, or de-duplicate on the id). An exception also acknowledges it (it
/// would fail again) and is logged. It has no channel of its own: channel_name() is the
/// named channel, and GroupAdd/GroupDiscard throw InvalidLayerCall; sends work.
/// Thread-safety and lifetime: as Consumer.
class ChannelConsumer : public Consumer {
 public:
  Task<void> Run() final;

 protected:
  /// Unique per message and gateway; the same on every delivery of one message.
  const std::string& delivery_id() const { return delivery_id_; }

 private:
  std::string delivery_id_;
};

}  // namespace sluice
