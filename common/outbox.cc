#include "common/outbox.h"

#include <algorithm>
#include <utility>

namespace sluice {
namespace {

// Tags, lengths and small fields of one part of an envelope, generously.
constexpr size_t kPartOverhead = 16;

size_t EstimateBytes(const v1::Event& event) {
  switch (event.kind_case()) {
    case v1::Event::kHttpRequest:
      return kPartOverhead + event.http_request().body().size();
    case v1::Event::kHttpResponseBody:
      return kPartOverhead + event.http_response_body().body().size();
    case v1::Event::kWebsocketReceive:
      return kPartOverhead + event.websocket_receive().data().size();
    case v1::Event::kWebsocketSend:
      return kPartOverhead + event.websocket_send().data().size();
    case v1::Event::kLayerMessage:
      return kPartOverhead + event.layer_message().message().size() +
             event.layer_message().delivery_id().size();
    case v1::Event::kHttpResponseStart: {
      size_t n = kPartOverhead;
      for (const auto& h : event.http_response_start().headers()) {
        n += h.name().size() + h.value().size() + 8;
      }
      return n;
    }
    default:
      return kPartOverhead + 32;
  }
}

size_t EstimateBytes(const v1::Scope& scope) {
  size_t n = kPartOverhead * 4 + scope.path().size() + scope.raw_path().size() +
             scope.query_string().size() + scope.root_path().size();
  for (const auto& h : scope.headers()) n += h.name().size() + h.value().size() + 8;
  for (const auto& p : scope.subprotocols()) n += p.size() + 4;
  return n;
}

}  // namespace

size_t EstimateBytes(const v1::Envelope& envelope) {
  size_t n = kPartOverhead;
  if (envelope.has_open()) n += EstimateBytes(envelope.open().scope());
  for (const v1::Event& event : envelope.events()) n += EstimateBytes(event);
  for (const v1::LayerOp& op : envelope.layer_ops()) {
    n += kPartOverhead * 2 + op.send().channel().size() + op.send().message().size() +
         op.group_add().group().size() + op.group_discard().group().size() +
         op.group_send().group().size() + op.group_send().message().size();
  }
  n += static_cast<size_t>(envelope.layer_results_size()) * kPartOverhead;
  if (envelope.has_credit()) n += kPartOverhead;
  if (envelope.has_close()) n += kPartOverhead + envelope.close().detail().size();
  if (envelope.has_state()) n += kPartOverhead + envelope.state().data().size();
  return n;
}

bool Outbox::Add(v1::Envelope&& envelope) {
  const bool was_empty = frames_.empty();
  const size_t bytes = EstimateBytes(envelope);
  total_bytes_ += bytes;
  if (!was_empty) {
    v1::Frame& frame = frames_.back();
    v1::Envelope& last = *frame.mutable_envelopes(frame.envelopes_size() - 1);
    // The same connection again: one envelope says it all (open, credit, events, close in
    // that order still holds, since a later envelope never carries an open).
    if (last.connection_id() == envelope.connection_id() && !last.has_close() &&
        !envelope.has_open() && last_bytes_ + bytes <= max_frame_bytes_) {
      if (envelope.has_credit()) {
        v1::Window* credit = last.mutable_credit();
        credit->set_events(credit->events() + envelope.credit().events());
        credit->set_bytes(credit->bytes() + envelope.credit().bytes());
      }
      // Numbered events follow on: the first number stands for all of them.
      if (last.seq() == 0) last.set_seq(envelope.seq());
      last.set_acked(std::max(last.acked(), envelope.acked()));
      if (envelope.has_state()) last.mutable_state()->Swap(envelope.mutable_state());
      // Layer operations and results keep their own order; none is ordered against events
      // (they go elsewhere: the layer, the instance's pending calls).
      auto* events = envelope.mutable_events();
      for (v1::Event& event : *events) last.add_events()->Swap(&event);
      for (v1::LayerOp& op : *envelope.mutable_layer_ops()) last.add_layer_ops()->Swap(&op);
      for (v1::LayerResult& result : *envelope.mutable_layer_results()) {
        last.add_layer_results()->Swap(&result);
      }
      if (envelope.has_close()) last.mutable_close()->Swap(envelope.mutable_close());
      last_bytes_ += bytes;
      return false;
    }
  }
  if (was_empty || last_bytes_ + bytes > max_frame_bytes_) {
    frames_.emplace_back();
    last_bytes_ = 0;
  }
  frames_.back().mutable_envelopes()->Add(std::move(envelope));
  last_bytes_ += bytes;
  return was_empty;
}

std::vector<v1::Frame> Outbox::Take(size_t* bytes) {
  *bytes = std::exchange(total_bytes_, 0);
  last_bytes_ = 0;
  return std::exchange(frames_, {});
}

void MoveEnvelopes(v1::Frame& from, v1::Frame& to) {
  auto* source = from.mutable_envelopes();
  auto* target = to.mutable_envelopes();
  const int n = source->size();
  if (n == 0) return;
  if (target->empty()) {
    target->Swap(source);
    return;
  }
  target->Reserve(target->size() + n);
  std::vector<v1::Envelope*> moved(static_cast<size_t>(n));
  source->ExtractSubrange(0, n, moved.data());
  for (v1::Envelope* envelope : moved) target->AddAllocated(envelope);
}

}  // namespace sluice
