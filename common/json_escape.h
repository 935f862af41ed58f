// common/json_escape.h — append a string as a JSON string literal.
//
// Used where a JSON line is built by hand (logging, audit) to keep field order and avoid a
// DOM. Untrusted text is common (tool results, prompts), so invalid UTF-8 is replaced with
// U+FFFD rather than copied through: the output is always valid JSON.
#pragma once

#include <string>
#include <string_view>

namespace agentry {

// Appends `"…"` with `"`, `\` and control characters escaped.
void AppendJsonString(std::string_view text, std::string* out);

// Length in bytes of the valid UTF-8 sequence at the start of `text`, or 0 when the first
// bytes are not one (truncated, overlong, surrogate, above U+10FFFF, stray continuation).
size_t Utf8SequenceLength(std::string_view text);

}  // namespace agentry
