// agentry — the command-line tool for people. Subcommands live in their own files; later
// issues add `up`, `run`, `chat`, `sessions`, `audit`, `approve`, `bench` and `train`.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/selfcheck.h"
#include "cli/validate.h"
#include "common/log/log.h"
#include "common/version.h"

namespace {

int Main(int argc, char** argv) {
  using agentry::GitDescribe;
  using agentry::Status;
  using agentry::StatusOr;
  using agentry::Version;
  namespace cli = agentry::cli;
  namespace log = agentry::log;

  CLI::App app{"Agentry: stateful LLM agents on Kubernetes.", "agentry"};
  app.set_version_flag(
      "--version", "agentry " + std::string(Version()) + " (" + std::string(GitDescribe()) + ")");
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (default: $AGENTRY_LOG_LEVEL or info)");
  app.require_subcommand(1);

  cli::SelfcheckOptions selfcheck_options;
  CLI::App* selfcheck = app.add_subcommand(
      "selfcheck", "Check this build end to end: CPU, config, HTTP server, metrics exposition.");
  selfcheck
      ->add_option("--manifest", selfcheck_options.manifests,
                   "ManagedAgent manifests to decode as part of the check")
      ->check(CLI::ExistingFile);

  std::vector<std::string> validate_files;
  CLI::App* validate = app.add_subcommand(
      "validate",
      "Check ManagedAgent manifests the way the API server will, naming each bad field.");
  validate->add_option("files", validate_files, "YAML files (several documents each is fine)")
      ->required();

  if (argc == 1) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  CLI11_PARSE(app, argc, argv);

  if (Status s = log::InitFromEnvironment(); !s.ok()) {
    std::fprintf(stderr, "agentry: %s\n", s.message().c_str());
    return 2;
  }
  if (!log_level.empty()) {
    StatusOr<log::Level> level = log::ParseLevel(log_level);
    if (!level.ok()) {
      std::fprintf(stderr, "agentry: --log-level: %s\n", level.status().message().c_str());
      return 2;
    }
    log::SetLevel(*level);
  }

  if (*selfcheck) {
    // The check starts servers that log each step; unless asked for, keep the report readable.
    if (log_level.empty() && std::getenv("AGENTRY_LOG_LEVEL") == nullptr) {
      log::SetLevel(log::Level::kWarn);
    }
    return cli::RunSelfcheck(selfcheck_options);
  }
  if (*validate) return cli::RunValidate(validate_files);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    // The belief: subcommands report errors as Status; reaching here is a bug, said plainly.
    std::fprintf(stderr, "agentry: internal error: %s\n", e.what());
    return 70;  // EX_SOFTWARE
  }
}
