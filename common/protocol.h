#pragma once

#include <cstdint>

namespace sluice {

/// The link protocol version both ends must speak (Hello/Welcome.protocol_version).
inline constexpr uint32_t kProtocolVersion = 1;

/// Largest http.request body piece the gateway sends in one event.
inline constexpr uint32_t kHttpChunkBytes = 64 * 1024;

}  // namespace sluice
