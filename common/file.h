// common/file.h — read a whole file, with an error that names it.
#pragma once

#include <string>

#include "common/status.h"

namespace agentry {

// The file's bytes; NotFound "PATH: cannot open (reason)" when it cannot be opened.
StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace agentry
