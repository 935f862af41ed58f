#include "common/file.h"

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace agentry {

StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return NotFoundError(path + ": cannot open (" + std::generic_category().message(errno) + ")");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace agentry
