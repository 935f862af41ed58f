// common/metrics/process_metrics.h — the standard process_* metrics every binary exports.
//
// The names and meanings Prometheus client libraries use (process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds), read from /proc at scrape time, so
// dashboards and alerts written for any other exporter work unchanged. Also
// agentry_build_info{version} = 1.
#pragma once

#include <string>

#include "common/metrics/registry.h"

namespace agentry::metrics {

void RegisterProcessMetrics(Registry* registry, const std::string& version);

}  // namespace agentry::metrics
