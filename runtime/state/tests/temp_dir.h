// runtime/state/tests/temp_dir.h — a directory for one test, removed with everything in it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace agentry::state {

class TempDir {
 public:
  // Under /tmp with a short name: a unix socket path inside it must stay under 108 bytes.
  TempDir() {
    std::string tmpl = "/tmp/agst-XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace agentry::state
