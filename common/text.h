#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// RFC 9110 tchar: what header names, methods and subprotocols are made of.
inline bool IsTokenChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// A non-empty token.
inline bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

/// ASCII lower case (header names; locale-free, unlike std::tolower).
inline char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
inline std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

/// ASCII case-insensitive equality (header names).
inline bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if ((x >= 'A' && x <= 'Z' ? x + 32 : x) != (y >= 'A' && y <= 'Z' ? y + 32 : y)) return false;
  }
  return true;
}

/// A header an application may send: a token name, and a value without CR, LF or NUL (so it
/// can never split a response). Checked by the SDK runtime and again by the gateway.
inline bool ValidHeaderField(std::string_view name, std::string_view value) {
  return IsToken(name) && value.find_first_of(std::string_view("\r\n\0", 3)) == value.npos;
}

/// Decodes %XX escapes (and '+' as space when `plus_is_space`, for query strings).
/// nullopt on a malformed escape.
inline std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space = false) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

/// Validates UTF-8 incrementally (WebSocket text arrives in pieces): well-formed sequences
/// only, no overlongs, no surrogates, nothing above U+10FFFF. Fails at the first byte that
/// cannot be part of valid text, so a bad message is refused before it is read whole.
class Utf8Validator final {
 public:
  /// Feeds the next bytes. False once the input can no longer be valid (then stays false).
  bool Feed(std::string_view s) {
    if (failed_) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
      if (need_ == 0) {
        // ASCII fast path, eight bytes at a time.
        while (end - p >= 8) {
          uint64_t word;
          std::memcpy(&word, p, 8);
          if (word & 0x8080808080808080ULL) break;
          p += 8;
        }
        if (p == end) break;
        const unsigned char c = *p++;
        if (c < 0x80) continue;
        lo_ = 0x80;
        hi_ = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
          need_ = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
          need_ = 2;
          if (c == 0xE0) lo_ = 0xA0;  // overlong
          if (c == 0xED) hi_ = 0x9F;  // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
          need_ = 3;
          if (c == 0xF0) lo_ = 0x90;  // overlong
          if (c == 0xF4) hi_ = 0x8F;  // above U+10FFFF
        } else {
          return Fail();
        }
      } else {
        const unsigned char c = *p++;
        if (c < lo_ || c > hi_) return Fail();
        lo_ = 0x80;
        hi_ = 0xBF;
        --need_;
      }
    }
    return true;
  }
  /// The input so far is valid and ends on a character boundary.
  bool complete() const { return !failed_ && need_ == 0; }
  void Reset() { *this = Utf8Validator(); }

 private:
  bool Fail() {
    failed_ = true;
    return false;
  }
  uint8_t need_ = 0;  // continuation bytes still expected
  uint8_t lo_ = 0x80;
  uint8_t hi_ = 0xBF;  // range allowed for the next continuation byte
  bool failed_ = false;
};

/// Whether `s` is well-formed UTF-8.
inline bool IsValidUtf8(std::string_view s) {
  Utf8Validator validator;
  return validator.Feed(s) && validator.complete();
}

}  // namespace sluice
