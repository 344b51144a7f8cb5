#pragma once

#include <memory>

#include "sluice/lifespan.h"
#include "sluice/router.h"

namespace sluice::demo {

/// The demo application: the chat page, hello, echo, SSE, scope inspection and WebSocket routes
/// (listed in README.md). A library so tests can drive the same consumers.
std::shared_ptr<Router> MakeApp();

/// The demo's lifespan: a startup hook that fails when SLUICE_DEMO_FAIL_STARTUP is set (the
/// tests' failing start), and a shutdown hook that prints "sluice-worker shutdown hooks ran".
Lifespan MakeLifespan();

}  // namespace sluice::demo
