#pragma once

#include "absl/status/statusor.h"
#include "sluice/event.h"
#include "sluice/v1/link.pb.h"

namespace sluice::worker {

/// Converts between the link's protobuf messages and the SDK's plain types, moving bodies
/// rather than copying them.
Scope FromProto(v1::Scope&& scope);
/// An event from the gateway; InvalidArgument for kinds only the worker sends.
absl::StatusOr<Event> FromProto(v1::Event&& event);
v1::Event ToProto(Event&& event);

}  // namespace sluice::worker
