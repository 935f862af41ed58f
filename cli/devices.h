// cli/devices.h — `agentry devices`: what the node daemon would see on this machine.
#pragma once

#include <string>

namespace agentry::cli {

struct DevicesOptions {
  std::string dev_root = "/dev";
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  bool json = false;
};

// Prints one line per device (or a JSON document) and each discovery warning on stderr.
// Exit code 0; 2 when a device plugin variable (NVIDIA_VISIBLE_DEVICES, ...) is malformed.
int RunDevices(const DevicesOptions& options);

}  // namespace agentry::cli
