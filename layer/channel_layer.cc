#include "layer/channel_layer.h"

#include <chrono>

namespace sluice::layer {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

constexpr size_t kMaxNameLength = 100;  // Channels: names are shorter than this

// Python's fnmatch.translate, for ECMAScript.
std::string GlobToRegex(std::string_view glob) {
  std::string out;
  for (size_t i = 0; i < glob.size();) {
    const char c = glob[i++];
    if (c == '*') {
      if (!out.ends_with(".*")) out += ".*";
    } else if (c == '?') {
      out += '.';
    } else if (c == '[') {
      size_t j = i;
      if (j < glob.size() && glob[j] == '!') ++j;
      if (j < glob.size() && glob[j] == ']') ++j;
      while (j < glob.size() && glob[j] != ']') ++j;
      if (j >= glob.size()) {
        out += "\\[";
        continue;
      }
      std::string_view set = glob.substr(i, j - i);
      i = j + 1;
      out += '[';
      if (set.starts_with('!')) {
        out += '^';
        set.remove_prefix(1);
      } else if (set.starts_with('^')) {
        out += '\\';
      }
      for (char s : set) {
        if (s == '\\' || s == '[') out += '\\';
        out += s;
      }
      out += ']';
    } else {
      if (std::string_view("\\^$.|+()[]{}*?/").find(c) != std::string_view::npos) out += '\\';
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string_view StatusName(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kChannelFull:
      return "channel_full";
    case Status::kTooLarge:
      return "too_large";
    case Status::kUnavailable:
      return "unavailable";
    case Status::kInvalid:
      return "invalid";
    case Status::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

double SystemClock() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

CapacityRule CapacityRule::Glob(std::string_view pattern, size_t capacity) {
  return CapacityRule(std::regex(GlobToRegex(pattern)), /*whole=*/true, capacity);
}

CapacityRule CapacityRule::Regex(const std::string& pattern, size_t capacity) {
  return CapacityRule(std::regex(pattern), /*whole=*/false, capacity);
}

bool CapacityRule::Matches(std::string_view channel) const {
  if (whole_) return std::regex_match(channel.begin(), channel.end(), regex_);
  return std::regex_search(channel.begin(), channel.end(), regex_,
                           std::regex_constants::match_continuous);
}

bool ValidChannelName(std::string_view name) {
  if (name.empty() || name.size() >= kMaxNameLength) return false;
  const size_t bang = name.find('!');
  for (size_t i = 0; i < name.size(); ++i) {
    if (i == bang) continue;
    if (!NameChar(name[i])) return false;
  }
  return bang != 0;
}

bool ValidGroupName(std::string_view name) {
  if (name.empty() || name.size() >= kMaxNameLength) return false;
  for (char c : name) {
    if (!NameChar(c)) return false;
  }
  return true;
}

std::string_view NonLocalName(std::string_view channel) {
  const size_t bang = channel.find('!');
  return bang == std::string_view::npos ? channel : channel.substr(0, bang + 1);
}

}  // namespace sluice::layer
