#pragma once

#include <sstream>
#include <string_view>

namespace sluice {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

/// Sets the least severe level written (default kInfo; SLUICE_LOG_LEVEL=debug|info|warning|
/// error in the environment overrides it at start). Thread-safe.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

/// One log line, written to stderr as a whole when destroyed, so lines from different threads
/// never interleave.
class LogLine final {
 public:
  LogLine(LogLevel level, std::string_view component);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  template <class T>
  LogLine& operator<<(const T& value) {
    out_ << value;
    return *this;
  }

 private:
  std::ostringstream out_;
};

}  // namespace sluice

// SLUICE_LOG(kInfo, "gateway") << "text"; the stream is not evaluated below the level.
#define SLUICE_LOG(level, component)                      \
  if (!::sluice::LogEnabled(::sluice::LogLevel::level)) { \
  } else                                                  \
    ::sluice::LogLine(::sluice::LogLevel::level, component)
