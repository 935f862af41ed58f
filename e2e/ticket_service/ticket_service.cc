// e2e/ticket_service — a stand-in for a team's ticket API: the HTTP tool that `make demo`'s
// triage agent calls (examples/local-triage-agent.yaml), and a server the e2e tests can use.
//
//   agentry-ticket-service --port 18090 --tickets e2e/ticket_service/tickets.json
//   GET /api/tickets/{id} -> 200 the ticket (its fields in the file's order), or
//                            404 {"error":"not found","message":"No ticket has id N."}
//
// tickets.json keeps to the titles and teams of the agent model's training corpus
// (train/corpus/triage_phrases.h): a model of under a million parameters answers well about
// tickets whose words it has seen, and invents around ones it has not.
//
// Each request is logged with the provenance headers the runtime sends, so the demo shows
// which agent asked, in which session, and for whom. Runs until SIGINT or SIGTERM.
#include <charconv>
#include <cstdio>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "common/file.h"
#include "common/http/server.h"
#include "common/metrics/registry.h"
#include "common/stop_signals.h"

namespace {

using agentry::StatusOr;
using agentry::http::HttpRequest;
using agentry::http::HttpResponse;

// The tickets by id, each as the JSON text it is served as (ordered_json keeps the fields in
// the file's order: id, title, status, ...).
StatusOr<std::map<std::string, std::string>> LoadTickets(const std::string& path) {
  AGENTRY_ASSIGN_OR_RETURN(const std::string text, agentry::ReadFileToString(path));
  const nlohmann::ordered_json all = nlohmann::ordered_json::parse(text, nullptr, false);
  if (!all.is_array()) return agentry::InvalidArgumentError(path + ": not a JSON array");
  std::map<std::string, std::string> tickets;
  for (size_t i = 0; i < all.size(); ++i) {
    const nlohmann::ordered_json& t = all[i];
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer()) {
      return agentry::InvalidArgumentError(path + ": [" + std::to_string(i) +
                                           "].id: required, an integer");
    }
    tickets[std::to_string(t["id"].get<int64_t>())] = t.dump();
  }
  return tickets;
}

std::string Arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string tickets_path = Arg(argc, argv, "--tickets", "");
  const std::string port_text = Arg(argc, argv, "--port", "18090");
  int port = 0;
  if (std::from_chars(port_text.data(), port_text.data() + port_text.size(), port).ptr !=
      port_text.data() + port_text.size()) {
    port = 0;  // not a number: refused below
  }
  if (tickets_path.empty() || port <= 0 || port > 65535) {
    std::fprintf(stderr, "usage: agentry-ticket-service --tickets FILE [--port N]\n");
    return 2;
  }
  StatusOr<std::map<std::string, std::string>> tickets = LoadTickets(tickets_path);
  if (!tickets.ok()) {
    std::fprintf(stderr, "agentry-ticket-service: %s\n", tickets.status().message().c_str());
    return 2;
  }
  agentry::StopSignals stop;  // before the server's threads start

  agentry::metrics::Registry registry;
  agentry::http::HttpServer server(
      {.host = "127.0.0.1", .port = static_cast<uint16_t>(port), .registry = &registry});
  const agentry::Status routed =
      server.Route("GET", "/api/tickets/{id}", [&](const HttpRequest& r) {
        const std::string& id = r.path_params.at("id");
        std::printf(
            "ticket-service: GET /api/tickets/%s for agent %s, session %s, on behalf of %s\n",
            id.c_str(), r.Header("X-Agentry-Agent").c_str(), r.Header("X-Agentry-Session").c_str(),
            r.Header("X-Agentry-On-Behalf-Of").empty()
                ? "nobody"
                : r.Header("X-Agentry-On-Behalf-Of").c_str());
        std::fflush(stdout);
        const auto it = tickets->find(id);
        HttpResponse response;
        if (it == tickets->end()) {
          response.status = 404;
          response.body = nlohmann::ordered_json{{"error", "not found"},
                                                 {"message", "No ticket has id " + id + "."}}
                              .dump();
        } else {
          response.body = it->second;
        }
        return response;
      });
  if (!routed.ok()) return 1;
  if (agentry::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "agentry-ticket-service: %s\n", s.message().c_str());
    return 1;
  }
  std::printf("ticket-service: %zu tickets at %s/api/tickets/{id}\n", tickets->size(),
              server.base_url().c_str());
  std::fflush(stdout);
  stop.Wait();
  server.Stop();
  return 0;
}
