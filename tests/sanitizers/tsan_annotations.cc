// ThreadSanitizer builds only (SLUICE_SANITIZE=thread): linked into every executable.
//
// Debian's gRPC and Abseil are not built with TSan, so TSan cannot see the synchronisation
// inside them, and reports the project's own correctly synchronised accesses as races. This
// file tells TSan about that synchronisation, so the project's code needs no suppression:
//
// 1. absl::Mutex / absl::CondVar. The project (and gRPC, through gpr_mu and grpc_core::Mutex)
//    locks them everywhere. Their out-of-line entry points are interposed here (an
//    executable's definitions take precedence over a shared library's, also for calls from
//    inside libgrpc and libabsl: see tsan_annotations.syms) and each lock and unlock is
//    announced with the annotations Abseil itself uses when built with TSan
//    (absl/synchronization/mutex.cc) around a call of the real function (dlsym RTLD_NEXT).
//    While a real Abseil function runs, TSan ignores memory accesses and synchronisation (the
//    region between the pre_ and post_ annotations): a Condition may be evaluated there by
//    whichever thread holds the mutex, as in Abseil's own TSan build. Await / LockWhen /
//    CondVar::Wait release the mutex and take it again inside; for TSan they are an unlock
//    before and a lock after. Nested calls (one interposed function calling another through
//    the PLT) pass through unannotated.
//
// 2. gRPC operations. A batch started with grpc_call_start_batch (what StartRead, StartWrite,
//    Finish... come down to) happens before its completion is handed out by
//    grpc_completion_queue_next / _pluck (the callback API's threads run the reactor's
//    OnReadDone, OnWriteDone... right after): release on the tag, acquire on the tag.
//    Server-side requests (grpc_server_request_*call) likewise.
//
// What stays invisible: gRPC's internal lock-free handoffs between its own threads; their
// accesses through interceptors (memcpy, free) are ignored by tsan.supp (called_from_lib).

#include <dlfcn.h>
#include <grpc/grpc.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"

#if !defined(__SANITIZE_THREAD__)
#error "tsan_annotations.cc belongs in ThreadSanitizer builds only"
#endif

namespace {

#define SLUICE_STR2(x) #x
#define SLUICE_STR(x) SLUICE_STR2(x)

// "_ZN4absl<len><inline namespace>": the mangled prefix of absl::<inline ns>::.
std::string Prefix() {
#if ABSL_OPTION_USE_INLINE_NAMESPACE
  const std::string ns = SLUICE_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return "_ZN4absl" + std::to_string(ns.size()) + ns;
#else
  return "_ZN4absl";
#endif
}

// The real (shared library's) function of that symbol name.
template <typename Fn>
Fn RealSymbol(const std::string& name) {
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_annotations: %s not found: %s\n", name.c_str(), dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// The real absl:: function for a mangled-name suffix after the namespace prefix.
template <typename Fn>
Fn Real(const char* suffix) {
  return RealSymbol<Fn>(Prefix() + suffix);
}

thread_local int depth = 0;

// Annotates the outermost interposed call only.
class Outer {
 public:
  Outer() : outer_(depth++ == 0) {}
  ~Outer() { --depth; }
  Outer(const Outer&) = delete;
  Outer& operator=(const Outer&) = delete;
  explicit operator bool() const { return outer_; }

 private:
  bool outer_;
};

constexpr unsigned kRead = __tsan_mutex_read_lock;

void PreLock(void* mu, unsigned flags, bool on) {
  if (on) __tsan_mutex_pre_lock(mu, flags);
}
void PostLock(void* mu, unsigned flags, bool on) {
  if (on) __tsan_mutex_post_lock(mu, flags, 0);
}
void PreUnlock(void* mu, unsigned flags, bool on) {
  if (on) __tsan_mutex_pre_unlock(mu, flags);
}
void PostUnlock(void* mu, unsigned flags, bool on) {
  if (on) __tsan_mutex_post_unlock(mu, flags);
}

// Lock-acquiring calls: pre_lock, real, post_lock (try-locks report failure).
template <typename R, typename... Args>
R Locking(R (*real)(absl::Mutex*, Args...), absl::Mutex* mu, unsigned flags, Args... args) {
  Outer outer;
  PreLock(mu, flags, bool(outer));
  if constexpr (std::is_void_v<R>) {
    real(mu, args...);
    PostLock(mu, flags, bool(outer));
  } else {
    R got = real(mu, args...);
    PostLock(mu, flags, bool(outer));
    return got;
  }
}

// Calls that release the mutex while waiting and hold it again on return.
template <typename R, typename Self, typename... Args>
R Waiting(R (*real)(Self*, Args...), Self* self, absl::Mutex* mu, Args... args) {
  Outer outer;
  PreUnlock(mu, 0, bool(outer));
  R got = real(self, args...);
  PostUnlock(mu, 0, bool(outer));
  PreLock(mu, 0, bool(outer));
  PostLock(mu, 0, bool(outer));
  return got;
}
template <typename Self, typename... Args>
void WaitingVoid(void (*real)(Self*, Args...), Self* self, absl::Mutex* mu, Args... args) {
  Outer outer;
  PreUnlock(mu, 0, bool(outer));
  real(self, args...);
  PostUnlock(mu, 0, bool(outer));
  PreLock(mu, 0, bool(outer));
  PostLock(mu, 0, bool(outer));
}

template <typename... Args>
void Unlocking(void (*real)(absl::Mutex*, Args...), absl::Mutex* mu, unsigned flags) {
  Outer outer;
  PreUnlock(mu, flags, bool(outer));
  real(mu);
  PostUnlock(mu, flags, bool(outer));
}

using Cond = const absl::Condition&;

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

Mutex::~Mutex() {
  static auto real = Real<void (*)(Mutex*)>("5MutexD2Ev");
  real(this);
  __tsan_mutex_destroy(this, __tsan_mutex_not_static);
}

void Mutex::Lock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  Locking(real, this, 0);
}
void Mutex::ReaderLock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  Locking(real, this, kRead);
}
bool Mutex::TryLock() {
  static auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  Outer outer;
  PreLock(this, __tsan_mutex_try_lock, bool(outer));
  const bool got = real(this);
  PostLock(this, __tsan_mutex_try_lock | (got ? 0 : __tsan_mutex_try_lock_failed), bool(outer));
  return got;
}
bool Mutex::ReaderTryLock() {
  static auto real = Real<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  Outer outer;
  const unsigned flags = kRead | __tsan_mutex_try_lock;
  PreLock(this, flags, bool(outer));
  const bool got = real(this);
  PostLock(this, flags | (got ? 0 : __tsan_mutex_try_lock_failed), bool(outer));
  return got;
}
void Mutex::Unlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  Unlocking(real, this, 0);
}
void Mutex::ReaderUnlock() {
  static auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  Unlocking(real, this, kRead);
}

void Mutex::LockWhen(Cond cond) {
  static auto real = Real<void (*)(Mutex*, Cond)>("5Mutex8LockWhenERKNS0_9ConditionE");
  Locking<void, Cond>(real, this, 0, cond);
}
void Mutex::ReaderLockWhen(Cond cond) {
  static auto real = Real<void (*)(Mutex*, Cond)>("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Locking<void, Cond>(real, this, kRead, cond);
}
bool Mutex::LockWhenWithTimeout(Cond cond, Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, Cond, Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking<bool, Cond, Duration>(real, this, 0, cond, timeout);
}
bool Mutex::ReaderLockWhenWithTimeout(Cond cond, Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, Cond, Duration)>(
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking<bool, Cond, Duration>(real, this, kRead, cond, timeout);
}
bool Mutex::LockWhenWithDeadline(Cond cond, Time deadline) {
  static auto real = Real<bool (*)(Mutex*, Cond, Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking<bool, Cond, Time>(real, this, 0, cond, deadline);
}
bool Mutex::ReaderLockWhenWithDeadline(Cond cond, Time deadline) {
  static auto real = Real<bool (*)(Mutex*, Cond, Time)>(
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking<bool, Cond, Time>(real, this, kRead, cond, deadline);
}

void Mutex::Await(Cond cond) {
  static auto real = Real<void (*)(Mutex*, Cond)>("5Mutex5AwaitERKNS0_9ConditionE");
  WaitingVoid<Mutex, Cond>(real, this, this, cond);
}
bool Mutex::AwaitWithTimeout(Cond cond, Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, Cond, Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Waiting<bool, Mutex, Cond, Duration>(real, this, this, cond, timeout);
}
bool Mutex::AwaitWithDeadline(Cond cond, Time deadline) {
  static auto real =
      Real<bool (*)(Mutex*, Cond, Time)>("5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Waiting<bool, Mutex, Cond, Time>(real, this, this, cond, deadline);
}

void CondVar::Wait(Mutex* mu) {
  static auto real = Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  WaitingVoid<CondVar, Mutex*>(real, this, mu, mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return Waiting<bool, CondVar, Mutex*, Duration>(real, this, mu, mu, timeout);
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static auto real =
      Real<bool (*)(CondVar*, Mutex*, Time)>("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return Waiting<bool, CondVar, Mutex*, Time>(real, this, mu, mu, deadline);
}

ABSL_NAMESPACE_END
}  // namespace absl

// ---- gRPC: a batch happens before its completion --------------------------------------------

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops, void* tag,
                                      void* reserved) {
  static auto real =
      RealSymbol<grpc_call_error (*)(grpc_call*, const grpc_op*, size_t, void*, void*)>(
          "grpc_call_start_batch");
  if (tag != nullptr) __tsan_release(tag);
  return real(call, ops, nops, tag, reserved);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq, gpr_timespec deadline,
                                      void* reserved) {
  static auto real = RealSymbol<grpc_event (*)(grpc_completion_queue*, gpr_timespec, void*)>(
      "grpc_completion_queue_next");
  grpc_event event = real(cq, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE && event.tag != nullptr) __tsan_acquire(event.tag);
  return event;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag, gpr_timespec deadline,
                                       void* reserved) {
  static auto real = RealSymbol<grpc_event (*)(grpc_completion_queue*, void*, gpr_timespec, void*)>(
      "grpc_completion_queue_pluck");
  grpc_event event = real(cq, tag, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE && event.tag != nullptr) __tsan_acquire(event.tag);
  return event;
}

grpc_call_error grpc_server_request_call(grpc_server* server, grpc_call** call,
                                         grpc_call_details* details,
                                         grpc_metadata_array* request_metadata,
                                         grpc_completion_queue* cq_bound_to_call,
                                         grpc_completion_queue* cq_for_notification, void* tag) {
  static auto real = RealSymbol<grpc_call_error (*)(
      grpc_server*, grpc_call**, grpc_call_details*, grpc_metadata_array*, grpc_completion_queue*,
      grpc_completion_queue*, void*)>("grpc_server_request_call");
  if (tag != nullptr) __tsan_release(tag);
  return real(server, call, details, request_metadata, cq_bound_to_call, cq_for_notification, tag);
}

grpc_call_error grpc_server_request_registered_call(grpc_server* server, void* registered_method,
                                                    grpc_call** call, gpr_timespec* deadline,
                                                    grpc_metadata_array* request_metadata,
                                                    grpc_byte_buffer** optional_payload,
                                                    grpc_completion_queue* cq_bound_to_call,
                                                    grpc_completion_queue* cq_for_notification,
                                                    void* tag) {
  static auto real = RealSymbol<grpc_call_error (*)(
      grpc_server*, void*, grpc_call**, gpr_timespec*, grpc_metadata_array*, grpc_byte_buffer**,
      grpc_completion_queue*, grpc_completion_queue*, void*)>(
      "grpc_server_request_registered_call");
  if (tag != nullptr) __tsan_release(tag);
  return real(server, registered_method, call, deadline, request_metadata, optional_payload,
              cq_bound_to_call, cq_for_notification, tag);
}

}  // extern "C"
