#include "common/metrics.h"

#include <set>
#include <vector>

namespace sluice {

MetricsRegistry::Entry& MetricsRegistry::Add(const std::string& name, const std::string& help,
                                             const std::string& labels, bool counter) {
  absl::MutexLock lock(&mu_);
  Entry& entry = entries_.emplace_back();
  entry.name = name;
  entry.help = help;
  entry.labels = labels;
  entry.counter = counter;
  return entry;
}

Counter& MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     const std::string& labels) {
  return Add(name, help, labels, true).counter_value;
}

Gauge& MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                 const std::string& labels) {
  return Add(name, help, labels, false).gauge_value;
}

void MetricsRegistry::AddGaugeFunction(const std::string& name, const std::string& help,
                                       std::function<int64_t()> read, const std::string& labels) {
  Add(name, help, labels, false).read = std::move(read);
}

void MetricsRegistry::AddCounterFunction(const std::string& name, const std::string& help,
                                         std::function<uint64_t()> read,
                                         const std::string& labels) {
  Add(name, help, labels, true).read_counter = std::move(read);
}

LinkTraffic::LinkTraffic(MetricsRegistry& r, const std::string& prefix)
    : frames_sent(r.AddCounter(prefix + "_link_frames_total",
                               "Frames (gRPC messages) on the links to the other tier",
                               R"(direction="sent")")),
      envelopes_sent(r.AddCounter(prefix + "_link_envelopes_total",
                                  "Envelopes (one connection's events) in the links' Frames",
                                  R"(direction="sent")")),
      frames_received(r.AddCounter(prefix + "_link_frames_total", "", R"(direction="received")")),
      envelopes_received(
          r.AddCounter(prefix + "_link_envelopes_total", "", R"(direction="received")")) {}

std::string MetricsRegistry::Render() const {
  absl::MutexLock lock(&mu_);
  // A family's samples must be contiguous, whatever the registration order.
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const Entry& entry : entries_) {
    if (seen.insert(entry.name).second) names.push_back(entry.name);
  }
  std::string out;
  for (const std::string& name : names) {
    bool described = false;
    for (const Entry& entry : entries_) {
      if (entry.name != name) continue;
      if (!described) {
        out += "# HELP " + name + " " + entry.help + "\n";
        out += "# TYPE " + name + (entry.counter ? " counter\n" : " gauge\n");
        described = true;
      }
      out += name;
      if (!entry.labels.empty()) out += "{" + entry.labels + "}";
      out += ' ';
      if (entry.read_counter) {
        out += std::to_string(entry.read_counter());
      } else if (entry.counter) {
        out += std::to_string(entry.counter_value.value());
      } else if (entry.read) {
        out += std::to_string(entry.read());
      } else {
        out += std::to_string(entry.gauge_value.value());
      }
      out += '\n';
    }
  }
  return out;
}

}  // namespace sluice
