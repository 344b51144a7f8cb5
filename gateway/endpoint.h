#pragma once

#include <memory>

#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

/// A client connection as the link sees it: where envelopes for its connection id go.
/// Called only on the connection's own shard thread.
class Endpoint : public std::enable_shared_from_this<Endpoint> {
 public:
  virtual ~Endpoint() = default;
  virtual void OnEnvelope(v1::Envelope& envelope) = 0;
  /// The link to the connection's worker broke; nothing more will come for it.
  virtual void OnLinkLost() = 0;
};

}  // namespace sluice::gateway
