// cli/runtime_endpoint.cc — see runtime_endpoint.h.
#include "cli/runtime_endpoint.h"

#include <filesystem>
#include <vector>

#include "common/file.h"
#include "common/strings.h"

namespace agentry::cli {

namespace fs = std::filesystem;

StatusOr<std::string> FindRuntime(const RuntimeLocation& where) {
  if (!where.url.empty()) return where.url;
  std::string endpoint;
  if (!where.dir.empty() || !where.agent.empty()) {
    endpoint = (where.dir.empty() ? ".agentry/" + where.agent : where.dir) + "/endpoint";
  } else {
    std::vector<std::string> found;
    std::error_code ec;
    for (const fs::directory_entry& d : fs::directory_iterator(".agentry", ec)) {
      if (fs::exists(d.path() / "endpoint")) found.push_back((d.path() / "endpoint").string());
    }
    if (found.size() != 1) {
      return InvalidArgumentError(
          found.empty() ? "no agent is running here (no .agentry/*/endpoint): start one with "
                          "`agentry up -f AGENT.yaml`, or give --url"
                        : "several agents run here: name one or give --url");
    }
    endpoint = found.front();
  }
  StatusOr<std::string> url = ReadFileToString(endpoint);
  if (!url.ok()) {
    return NotFoundError(endpoint + " not found: is `agentry up` running for this agent? " +
                         "(or give --url)");
  }
  return std::string(TrimAsciiWhitespace(*url));
}

}  // namespace agentry::cli
