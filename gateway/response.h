#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/v1/link.pb.h"

namespace sluice::gateway {

using HeaderList = google::protobuf::RepeatedPtrField<v1::Header>;

/// Header names are tokens; values hold no CR, LF or NUL. Anything else from a worker is a
/// protocol error (the client gets 500, never a split response).
bool ValidHeaders(const HeaderList& headers);

/// The application's Content-Length, if it set one. InvalidArgument when malformed or when
/// several disagree.
absl::StatusOr<std::optional<uint64_t>> DeclaredLength(const HeaderList& headers);

/// Status line and headers of a response, ending with the blank line. The application's
/// hop-by-hop headers (connection, keep-alive, transfer-encoding) give way to the framing
/// chosen here: `chunked`, or `content_length` when given and the application set none.
std::string ResponseHead(const v1::HttpResponseStart& start, bool http10, bool keep_alive,
                         bool chunked, std::optional<uint64_t> content_length);

/// "<hex size>\r\n".
std::string ChunkHeader(size_t size);

/// A complete plain-text response the gateway answers by itself (400, 431, 500, 502, 503).
std::string CannedResponse(unsigned status, std::string_view body, bool keep_alive,
                           bool retry_after);

}  // namespace sluice::gateway
