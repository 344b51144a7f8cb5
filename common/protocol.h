#pragma once

#include <cstdint>

namespace sluice {

/// The link protocol version both ends must speak (Hello/Welcome.protocol_version).
inline constexpr uint32_t kProtocolVersion = 1;

/// Largest http.request body piece the gateway sends in one event.
inline constexpr uint32_t kHttpChunkBytes = 64 * 1024;

/// Close codes an endpoint may put in a close frame (RFC 6455 7.4): 1004-1006 and 1015 are
/// reserved, 1016-2999 unassigned.
inline bool SendableCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace sluice
