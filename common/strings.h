// common/strings.h — small text helpers several modules need.
#pragma once

#include <optional>
#include <string_view>

namespace agentry {

// `s` without leading and trailing ASCII whitespace (space, tab, newline, CR, VT, FF).
std::string_view TrimAsciiWhitespace(std::string_view s);

// `s` as a number when it is ASCII decimal digits only and fits an int ("2", "007"; not "",
// "+2", "-0", "2x" or " 2"); nullopt otherwise.
std::optional<int> ParseNonNegativeInt(std::string_view s);

}  // namespace agentry
