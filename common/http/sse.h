// common/http/sse.h — reads a server-sent event stream (text/event-stream) as it arrives.
//
//   SseParser parser;
//   for (const SseEvent& e : parser.Feed(chunk)) Handle(e.name, e.data);
//
// What the runtime's streams use of the format (WHATWG HTML, "server-sent events"): lines end
// in \n or \r\n; "event:" names the event, "data:" lines are joined with \n, one space after
// the colon is dropped, lines starting with ':' are comments, a blank line dispatches. An
// event with no name is "message"; a block with no data dispatches nothing. A chunk may end
// anywhere, mid-line included: the rest waits for the next Feed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace agentry::http {

struct SseEvent {
  std::string name;  // "message" when the stream named none
  std::string data;
};

class SseParser {
 public:
  // The events that `bytes` completes.
  std::vector<SseEvent> Feed(std::string_view bytes);

 private:
  void Line(std::string_view line, std::vector<SseEvent>* out);

  std::string partial_;  // a line not yet ended
  std::string name_;
  std::string data_;
  bool has_data_ = false;
};

}  // namespace agentry::http
