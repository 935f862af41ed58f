// common/version.h — the build's version, the same string in every binary, in
// `--version` output and in the agentry_build_info metric.
#pragma once

#include <string_view>

namespace agentry {

// "0.1.0" from the project version in CMakeLists.txt.
std::string_view Version();
// `git describe` of the source tree at configure time, or "unknown".
std::string_view GitDescribe();

}  // namespace agentry
