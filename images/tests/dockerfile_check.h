// A static checker for the project's Dockerfiles (images/*.Dockerfile). No registry is
// reachable where the tests run and docker cannot build there, so the images are checked by
// reading their Dockerfiles: a small parser (logical lines, `\` continuations, comments) and
// one function per rule, each rule written down in images/README.md.
//
//   Dockerfile file = ParseDockerfile("images/agent.Dockerfile", text);
//   for (const Finding& f : Check(file, {.expected_uid = 65532, .expected_version = "0.1.0"}))
//     std::cerr << f.ToString() << "\n";   // images/agent.Dockerfile:12: [apt-lists] ...
//
// The parser covers the subset of the Dockerfile syntax the project uses; what it does not
// understand (heredocs, an `# escape=` directive, unknown instructions) is reported by the
// `syntax` rule rather than misread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentry::images {

// One instruction: a logical line, continuations joined.
struct Instruction {
  int line = 0;           // physical line (1-based) the instruction starts on
  std::string keyword{};  // upper case: FROM, RUN, COPY, ...
  std::string args{};     // the rest, with each `\`+newline removed as Docker does
  int stage = -1;         // index of the FROM it belongs to; -1 before the first FROM
};

// One finding: names the file, the line and the rule, so a failing test says what to fix.
struct Finding {
  std::string file{};
  int line = 0;
  std::string rule{};  // a rule id, see Rules()
  std::string message{};
  std::string ToString() const;  // "FILE:LINE: [RULE] MESSAGE"
};

struct Dockerfile {
  std::string path{};  // as findings name it, e.g. images/agent.Dockerfile
  std::vector<Instruction> instructions{};
  std::vector<Finding> parse_errors{};  // reported by the `syntax` rule
};

Dockerfile ParseDockerfile(std::string_view path, std::string_view text);

// One stage: a FROM and the instructions after it.
struct Stage {
  int index = 0;
  int line = 0;         // the FROM's line
  std::string image{};  // as written: debian:bookworm-slim, or an earlier stage's name
  std::string name{};   // from `AS name`, lower case; empty when unnamed
  std::vector<const Instruction*> instructions{};  // after the FROM, in order
};
std::vector<Stage> Stages(const Dockerfile& file);

// Words of a shell command line: quotes removed (nothing expanded); the operators && || ; | &
// are tokens of their own with `op` set, so commands can be told apart.
struct ShellToken {
  std::string text{};
  bool op = false;
};
std::vector<ShellToken> LexShell(std::string_view text);

// The commands of a RUN (its flags such as --mount skipped): words split at the operators,
// leading VAR=value assignments dropped. An exec-form RUN ["a", "b"] is one command.
struct RunCommands {
  std::vector<std::vector<std::string>> commands{};
  std::vector<std::string> operators{};  // the operators between them, in order
  bool exec_form = false;
};
RunCommands ParseRun(const Instruction& run);

// An exec-form (JSON array of strings) ENTRYPOINT/CMD/RUN argument; nullopt for shell form.
std::optional<std::vector<std::string>> ExecForm(std::string_view args);

// What the final stage copies from another stage: source path in that stage, destination.
struct StageCopy {
  int line = 0;
  std::string from{};  // the stage named in --from
  std::string source{};
  std::string destination{};  // resolved: a destination ending in / gets the source's name
};
std::vector<StageCopy> FinalStageCopies(const Dockerfile& file);

// The build stage's `cmake --build ... --target A B` targets, in order.
std::vector<std::string> BuildTargets(const Dockerfile& file);

// Packages the final stage installs with apt-get install, in order.
std::vector<std::string> FinalStagePackages(const Dockerfile& file);

// The build stage's CMake build tree inside the image: its WORKDIR + /build/default/.
std::string BuildTreeInImage(const Dockerfile& file);

// What a check compares against, read by the tests from the project's sources.
struct CheckOptions {
  int64_t expected_uid = -1;       // the uid the operator renders; -1: any non-root uid
  std::string expected_version{};  // project(VERSION) in CMakeLists.txt; empty: any
};

struct Rule {
  const char* id = "";       // kebab-case, as findings name it
  const char* summary = "";  // one line, as in images/README.md
  void (*check)(const Dockerfile&, const CheckOptions&, std::vector<Finding>*) = nullptr;
};
const std::vector<Rule>& Rules();

// Findings of every rule, or of one rule (an unknown id is a programming error: it aborts).
std::vector<Finding> Check(const Dockerfile& file, const CheckOptions& options);
std::vector<Finding> CheckRule(std::string_view rule_id, const Dockerfile& file,
                               const CheckOptions& options);

}  // namespace agentry::images
