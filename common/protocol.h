#pragma once

#include <cstdint>

namespace sluice {

/// The link protocol version both ends must speak (Hello/Welcome.protocol_version).
inline constexpr uint32_t kProtocolVersion = 4;

/// Channel-layer operations one connection may have outstanding (sent, not yet answered).
/// The worker holds further calls until one is answered; the gateway answers INVALID past it.
inline constexpr uint32_t kMaxLayerOps = 64;

/// Background-channel messages one gateway has delivered and not yet seen acknowledged, per
/// named channel: its puller stops pulling from the layer at this bound.
inline constexpr uint32_t kMaxDeliveriesPerChannel = 64;

/// Largest state a consumer may save for its connection (SavedState): the gateway holds it
/// for the connection's life, so it stays small.
inline constexpr uint32_t kMaxSavedStateBytes = 16 * 1024;  // = sluice::kMaxStateBytes (SDK)

/// Largest gRPC message either end accepts: one Frame of at most ~1 MiB, or a single larger
/// event (a WebSocket message up to the gateway's --max-ws-message).
inline constexpr int kMaxMessageBytes = 64 << 20;

/// HTTP/2 keepalive under the link's own heartbeats, the same on both ends: a peer that
/// stops reading entirely is cut off by the transport.
inline constexpr int kKeepaliveTimeMs = 10000;
inline constexpr int kKeepaliveTimeoutMs = 5000;

/// Default credit per connection and direction (--window-events, --window-bytes on both
/// ends): the bound of the gateway's client-bound queue and of the worker's inbox.
inline constexpr uint32_t kDefaultWindowEvents = 16;
inline constexpr uint64_t kDefaultWindowBytes = 1 << 20;

/// Largest http.request body piece the gateway sends in one event.
inline constexpr uint32_t kHttpChunkBytes = 64 * 1024;

/// WebSocket close codes (RFC 6455 7.4.1, IANA registry) used by both ends.
namespace ws_close {
inline constexpr uint16_t kNormal = 1000;
inline constexpr uint16_t kGoingAway = 1001;
inline constexpr uint16_t kProtocolError = 1002;
inline constexpr uint16_t kNoStatus = 1005;  // reported to the application, never sent
inline constexpr uint16_t kAbnormal = 1006;  // reported to the application, never sent
inline constexpr uint16_t kInvalidPayload = 1007;
inline constexpr uint16_t kPolicyViolation = 1008;
inline constexpr uint16_t kTooBig = 1009;
inline constexpr uint16_t kInternalError = 1011;
inline constexpr uint16_t kServiceRestart = 1012;
}  // namespace ws_close

/// Close codes an endpoint may put in a close frame (RFC 6455 7.4): 1004-1006 and 1015 are
/// reserved, 1016-2999 unassigned.
inline bool SendableCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace sluice
