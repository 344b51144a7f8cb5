#pragma once

#include <memory>

#include "sluice/router.h"

namespace sluice::demo {

/// The demo application: the chat page, hello, echo, SSE, scope inspection and WebSocket routes
/// (listed in README.md). A library so tests can drive the same consumers.
std::shared_ptr<Router> MakeApp();

}  // namespace sluice::demo
