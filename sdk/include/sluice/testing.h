#pragma once

// Testing consumers without sockets (Channels' channels.testing): communicators run a
// consumer instance in-process, on an event loop thread of their own, with the in-memory
// channel layer, and let a test (GoogleTest or any other) talk to it as the gateway would.
// Every call that waits takes a timeout and throws testing::Timeout when it passes, so a
// broken consumer fails its test instead of hanging it. Link `sluice::testing`.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/consumer.h"

namespace sluice::testing {

using std::chrono::milliseconds;

/// A communicator call waited longer than its timeout.
class Timeout final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Sends to a channel or a group of the communicators' in-memory layer, as another process
/// would (Channels' `get_channel_layer().send(...)` in a test). Throws a LayerError, or
/// Timeout.
void LayerSend(const std::string& channel, const Message& message,
               milliseconds timeout = milliseconds(1000));
void LayerGroupSend(const std::string& group, const Message& message,
                    milliseconds timeout = milliseconds(1000));

/// Runs one instance of `app` for `scope` (ASGI's ApplicationCommunicator): events go in with
/// SendInput, what the consumer sends comes out of ReceiveOutput. The consumer gets a
/// channel_name() on the in-memory layer and its messages, as under a gateway.
/// Differences from a worker: no credit (sends never wait: at most kMaxUnreadOutput events
/// the test has not read are held, and a send past that throws std::length_error, which ends
/// the consumer and reaches the test), and the ASGI event-order rules the worker enforces (a
/// body before http.response.start, ...) are not checked. Input is what the test sends.
/// Thread-safety: use one communicator from one thread. Lifetime: `app` must outlive it; the
/// destructor disconnects the consumer and waits (bounded) for it to return.
class ApplicationCommunicator {
 public:
  static constexpr size_t kMaxUnreadOutput = 65536;

  ApplicationCommunicator(Application& app, Scope scope);
  virtual ~ApplicationCommunicator();
  ApplicationCommunicator(const ApplicationCommunicator&) = delete;
  ApplicationCommunicator& operator=(const ApplicationCommunicator&) = delete;

  /// Hands `event` to the consumer (its next Receive).
  void SendInput(Event event);
  /// The next event the consumer sent. Throws Timeout; rethrows what the consumer threw if it
  /// ended with an exception and sent nothing more.
  Event ReceiveOutput(milliseconds timeout = milliseconds(1000));
  /// True when the consumer sent nothing within `timeout` (Channels' receive_nothing).
  bool ReceiveNothing(milliseconds timeout = milliseconds(100));
  /// Waits for the consumer to return; rethrows its exception. Throws Timeout.
  void Wait(milliseconds timeout = milliseconds(1000));
  bool finished() const;
  const std::string& channel_name() const;
  /// What the consumer saved last with SaveState (a WebSocket's), if anything. To test a
  /// consumer's resume, start a new communicator's consumer with
  /// SendInput(WebSocketResume{state}) instead of Connect().
  std::optional<std::string> saved_state() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// A WebSocket client for a consumer (Channels' WebsocketCommunicator). Communicators take
/// headers as a plain vector, so a braced list works here (they are never co_awaited).
class WebsocketCommunicator : public ApplicationCommunicator {
 public:
  WebsocketCommunicator(Application& app, std::string path, Headers::Base headers = {},
                        std::vector<std::string> subprotocols = {});

  struct Connected {
    bool accepted = false;
    std::string subprotocol;  // accepted: the one chosen, if any
    int close_code = 0;       // refused: 1000 for a plain deny (the gateway answers 403)
  };
  /// Sends websocket.connect and waits for the accept or the close.
  Connected Connect(milliseconds timeout = milliseconds(1000));
  void SendText(std::string text);
  void SendBinary(std::string bytes);
  void SendJson(const Message& content);
  /// The next message; throws std::runtime_error when the consumer sent something else
  /// (binary for text, a close, ...), Timeout when nothing came.
  std::string ReceiveText(milliseconds timeout = milliseconds(1000));
  std::string ReceiveBinary(milliseconds timeout = milliseconds(1000));
  Message ReceiveJson(milliseconds timeout = milliseconds(1000));
  /// Waits for the consumer to close; its code.
  int ReceiveClose(milliseconds timeout = milliseconds(1000));
  /// The client leaves with `code`; waits for the consumer to return.
  void Disconnect(int code = 1000, milliseconds timeout = milliseconds(1000));

 private:
  WebSocketMessage ReceiveMessage(milliseconds timeout);
};

/// An HTTP client for a consumer (Channels' HttpCommunicator): one request, its whole body
/// sent at once.
class HttpCommunicator : public ApplicationCommunicator {
 public:
  HttpCommunicator(Application& app, std::string method, std::string path, std::string body = {},
                   Headers::Base headers = {});

  struct Response {
    int status = 0;
    Headers headers;
    std::string body;
    std::optional<std::string_view> Header(std::string_view name) const;
  };
  /// Sends the request and collects the whole response.
  Response GetResponse(milliseconds timeout = milliseconds(1000));

 private:
  std::string body_;
  bool sent_ = false;
};

}  // namespace sluice::testing
