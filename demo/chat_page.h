#pragma once

#include <string_view>

namespace sluice::demo {

/// demo/chat.html, byte for byte: the chat page GET / serves. Built into the binary from a
/// source file that demo/embed.cmake generates at build time (no file is read at run time).
extern const std::string_view kChatPage;

}  // namespace sluice::demo
