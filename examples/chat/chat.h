#pragma once

#include <memory>

#include "sluice/sluice.h"

namespace chat {

/// The chat application: WebSocket /ws/chat/{room} for users with a token (`?token=` or the
/// `token` cookie); everyone in a room gets every message as "NAME: TEXT". Without a valid
/// token the handshake is refused (403).
std::shared_ptr<sluice::Application> MakeApp();

}  // namespace chat
