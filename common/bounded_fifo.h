#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace sluice {

/// A first-in first-out queue of at most `capacity` elements: the client-bound queues of the
/// gateway's sessions and the worker's instance inboxes.
/// - Storage is a ring that starts small, doubles as needed up to `capacity` slots, and is
///   freed when the queue runs empty, so an idle connection holds none.
/// - pop() destroys the element at once: a consumed payload is released immediately, however
///   long the queue stays busy.
/// - push() past the capacity fails (returns false) and leaves the queue unchanged: callers
///   bound what they push by credit, so a false return is the peer's protocol violation.
/// - push() may move elements (when the ring grows): never hold a pointer into an element
///   across a push. Move an element out (take()) before handing its bytes to an I/O
///   operation.
/// Thread-safety: none; owned by one executor. Not copyable or movable.
template <class T>
class BoundedFifo final {
 public:
  static constexpr size_t kInitialSlots = 4;

  explicit BoundedFifo(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}
  BoundedFifo(const BoundedFifo&) = delete;
  BoundedFifo& operator=(const BoundedFifo&) = delete;
  ~BoundedFifo() { clear(); }

  [[nodiscard]] bool push(T&& value) {
    if (size_ == capacity_) return false;
    if (size_ == slots_) Grow();
    ::new (static_cast<void*>(&At(size_))) T(std::move(value));
    ++size_;
    return true;
  }

  /// The oldest element; the queue must not be empty.
  T& front() { return ring_[head_]; }
  /// The i-th oldest element (0 is front()); i < size().
  T& operator[](size_t i) { return At(i); }

  /// Destroys the oldest element; the queue must not be empty.
  void pop() {
    std::destroy_at(ring_ + head_);
    if (++head_ == slots_) head_ = 0;
    if (--size_ == 0) Release();
  }

  /// Moves the oldest element out and pops it.
  T take() {
    T value = std::move(front());
    pop();
    return value;
  }

  /// Destroys every element after the first `keep`.
  void truncate(size_t keep) {
    while (size_ > keep) {
      std::destroy_at(&At(size_ - 1));
      --size_;
    }
    if (size_ == 0) Release();
  }

  void clear() { truncate(0); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == capacity_; }
  size_t capacity() const { return capacity_; }
  /// Slots allocated now (0 whenever the queue is empty).
  size_t allocated() const { return slots_; }

 private:
  T& At(size_t i) {
    size_t at = head_ + i;
    if (at >= slots_) at -= slots_;
    return ring_[at];
  }

  void Grow() {
    const size_t slots = std::min(capacity_, slots_ == 0 ? kInitialSlots : slots_ * 2);
    T* ring = std::allocator<T>().allocate(slots);
    for (size_t i = 0; i < size_; ++i) {
      ::new (static_cast<void*>(ring + i)) T(std::move(At(i)));
      std::destroy_at(&At(i));
    }
    if (ring_) std::allocator<T>().deallocate(ring_, slots_);
    ring_ = ring;
    slots_ = slots;
    head_ = 0;
  }

  void Release() {
    if (ring_) std::allocator<T>().deallocate(ring_, slots_);
    ring_ = nullptr;
    slots_ = 0;
    head_ = 0;
  }

  T* ring_ = nullptr;
  size_t capacity_;
  size_t slots_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace sluice
