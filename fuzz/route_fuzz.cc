// Fuzzes the HTTP route table with request paths: matching must never crash and a match
// must capture exactly the pattern's parameters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/http/route_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const agentry::http::RouteTable* table = [] {
    auto* t = new agentry::http::RouteTable();
    (void)t->Add("GET", "/v1/sessions", 0);
    (void)t->Add("GET", "/v1/sessions/{id}", 1);
    (void)t->Add("POST", "/v1/sessions/{id}/approvals/{call}", 2);
    return t;
  }();
  const std::string path(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> allowed;
  auto match = table->Find("GET", path, &allowed);
  if (match && match->index == 1 && match->params.size() != 1) std::abort();
  if (match && match->index == 0 && !match->params.empty()) std::abort();
  auto post = table->Find("POST", path, nullptr);
  if (post && post->params.size() != 2) std::abort();
  return 0;
}
