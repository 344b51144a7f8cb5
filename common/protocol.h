#pragma once

#include <cstdint>

namespace sluice {

/// The link protocol version both ends must speak (Hello/Welcome.protocol_version).
inline constexpr uint32_t kProtocolVersion = 1;

/// Largest gRPC message either end accepts: one Frame of at most ~1 MiB, or a single larger
/// event (a WebSocket message up to the gateway's --max-ws-message).
inline constexpr int kMaxMessageBytes = 64 << 20;

/// HTTP/2 keepalive under the link's own heartbeats, the same on both ends: a peer that
/// stops reading entirely is cut off by the transport.
inline constexpr int kKeepaliveTimeMs = 10000;
inline constexpr int kKeepaliveTimeoutMs = 5000;

/// Largest http.request body piece the gateway sends in one event.
inline constexpr uint32_t kHttpChunkBytes = 64 * 1024;

/// Close codes an endpoint may put in a close frame (RFC 6455 7.4): 1004-1006 and 1015 are
/// reserved, 1016-2999 unassigned.
inline bool SendableCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace sluice
