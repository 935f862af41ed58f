#include "common/metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace agentry::metrics {
namespace {

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count - 3;  // ".", ".." and the descriptor opendir itself holds
}

// Fields 14/15 (utime, stime, in clock ticks), 22 (starttime, ticks after boot),
// 23 (vsize bytes) and 24 (rss pages) of /proc/self/stat. The command name (field 2) may
// contain spaces, so parsing starts after its closing parenthesis.
struct ProcStat {
  double cpu_seconds = 0;
  double start_ticks = 0;
  double virtual_bytes = 0;
  double resident_bytes = 0;
  bool ok = false;
};

ProcStat ReadProcStat() {
  ProcStat out;
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // After ")" the next field is number 3 (state).
  for (int index = 3; fields >> field; ++index) {
    if (index == 14 || index == 15) out.cpu_seconds += std::stod(field) / ticks;
    if (index == 22) out.start_ticks = std::stod(field);
    if (index == 23) out.virtual_bytes = std::stod(field);
    if (index == 24) {
      out.resident_bytes = std::stod(field) * page;
      out.ok = true;
      break;
    }
  }
  return out;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

void RegisterProcessMetrics(Registry* registry, const std::string& version) {
  registry->AddGauge("agentry_build_info", "Agentry build; the value is always 1.", {"version"})
      .WithLabels({version})
      .Set(1);

  Counter& cpu = registry
                     ->AddCounter("process_cpu_seconds_total",
                                  "Total user and system CPU time spent in seconds.")
                     .WithLabels({});
  Gauge& resident =
      registry->AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.")
          .WithLabels({});
  Gauge& virt = registry->AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
                    .WithLabels({});
  Gauge& open_fds =
      registry->AddGauge("process_open_fds", "Number of open file descriptors.").WithLabels({});
  Gauge& max_fds = registry->AddGauge("process_max_fds", "Maximum number of open file descriptors.")
                       .WithLabels({});
  Gauge& start = registry
                     ->AddGauge("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.")
                     .WithLabels({});

  const double boot = BootTimeSeconds();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const ProcStat at_start = ReadProcStat();
  if (at_start.ok && ticks > 0) start.Set(boot + at_start.start_ticks / ticks);

  registry->AddCollectHook([&cpu, &resident, &virt, &open_fds, &max_fds] {
    const ProcStat stat = ReadProcStat();
    if (stat.ok) {
      // The counter only moves forward; add the difference since the last scrape.
      const double delta = stat.cpu_seconds - cpu.Value();
      if (delta > 0) cpu.Increment(delta);
      resident.Set(stat.resident_bytes);
      virt.Set(stat.virtual_bytes);
    }
    open_fds.Set(CountOpenFds());
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) max_fds.Set(static_cast<double>(limit.rlim_cur));
  });
}

}  // namespace agentry::metrics
