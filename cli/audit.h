// cli/audit.h — `agentry audit`: an agent's hash-chained audit log through its runtime's API.
//
//   agentry audit verify [NAME | --url URL]   checks the chain; exit 1 naming the first
//                                             record edited, deleted or reordered
//   agentry audit list [NAME | --url URL] [--session ID]
//                                             every record, one JSON object per line
#pragma once

#include <string>

namespace agentry::cli {

struct AuditOptions {
  std::string action;  // verify | list
  std::string agent;
  std::string dir;
  std::string url;
  std::string session;  // list: only this session's records
};

// 0: verified (or listed); 1: the chain is broken, or the runtime could not be asked;
// 2: bad options.
int RunAudit(const AuditOptions& options);

}  // namespace agentry::cli
