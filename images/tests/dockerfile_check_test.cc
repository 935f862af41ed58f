// The project's Dockerfiles (images/*.Dockerfile), checked statically: no registry is
// reachable here and docker cannot build, so these tests read the files instead. Four kinds:
//   - the parser (continuations, comments, stages, shell words);
//   - every rule of images/README.md over every Dockerfile, one test per rule;
//   - the checker itself: a good Dockerfile broken one way at a time must make exactly the
//     rule that guards against it fire, naming the file, the line and the rule;
//   - the images against the project: what they copy is what the build produces, the targets
//     they build exist, the user is the one the operator's pods run as, the packages they
//     install are those of the libraries the binaries link, the subcommands they run exist.
#include "images/tests/dockerfile_check.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace agentry::images {
namespace {

namespace fs = std::filesystem;

// The source tree, and the build tree this test was configured in (whatever its preset).
constexpr const char* kSource = AGENTRY_SOURCE_DIR;
constexpr const char* kBinary = AGENTRY_BINARY_DIR;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Join(const std::vector<Finding>& findings) {
  std::string out;
  for (const Finding& finding : findings) out += "\n  " + finding.ToString();
  return out;
}

// Every images/*.Dockerfile, parsed, in name order.
std::vector<Dockerfile> ProjectDockerfiles() {
  std::vector<fs::path> paths;
  for (const fs::directory_entry& entry : fs::directory_iterator(fs::path(kSource) / "images")) {
    if (entry.path().extension() == ".Dockerfile") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<Dockerfile> files;
  files.reserve(paths.size());
  for (const fs::path& path : paths) {
    files.push_back(ParseDockerfile("images/" + path.filename().string(), ReadFile(path)));
  }
  return files;
}

// What the images must agree with, read from the sources that define it.
std::optional<int64_t> OperatorUid() {
  std::smatch match;
  std::string text = ReadFile(fs::path(kSource) / "operator/render.cc");
  if (!std::regex_search(text, match, std::regex(R"(kNonRootUid\s*=\s*(\d+))"))) {
    return std::nullopt;
  }
  return std::stoll(match[1]);
}

std::optional<std::string> ProjectVersion() {
  std::smatch match;
  std::string text = ReadFile(fs::path(kSource) / "CMakeLists.txt");
  if (!std::regex_search(text, match, std::regex(R"(project\(\s*agentry\s+VERSION\s+([0-9.]+))"))) {
    return std::nullopt;
  }
  return match[1].str();
}

// A command's exit status and its standard output.
struct CommandResult {
  int status = -1;
  std::string output{};
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool HaveTool(const std::string& tool) {
  return RunCommand("command -v " + tool + " >/dev/null 2>&1").status == 0;
}

// ---------------------------------------------------------------------------------------
// The parser.

TEST(DockerfileParserTest, JoinsContinuationsAndDropsCommentsInsideThem) {
  Dockerfile file = ParseDockerfile("t.Dockerfile",
                                    "# top comment\n"
                                    "FROM debian:bookworm AS build\n"
                                    "RUN apt-get update \\\n"
                                    "    # a comment inside the continuation\n"
                                    "\n"
                                    "    && apt-get install -y x\n"
                                    "USER 1\n");
  ASSERT_EQ(file.instructions.size(), 3u);
  EXPECT_TRUE(file.parse_errors.empty()) << Join(file.parse_errors);
  EXPECT_EQ(file.instructions[1].keyword, "RUN");
  EXPECT_EQ(file.instructions[1].line, 3);  // where it starts
  EXPECT_EQ(file.instructions[1].args, "apt-get update     && apt-get install -y x");
  EXPECT_EQ(file.instructions[2].line, 7);
}

TEST(DockerfileParserTest, KeywordsAreCaseInsensitiveAndStagesAreNumbered) {
  Dockerfile file = ParseDockerfile("t.Dockerfile",
                                    "ARG BASE=1\r\n"
                                    "from --platform=linux/amd64 debian:bookworm as Build\r\n"
                                    "run true\r\n"
                                    "FROM debian:bookworm-slim\r\n"
                                    "USER 65532\r\n");
  ASSERT_EQ(file.instructions.size(), 5u);
  EXPECT_EQ(file.instructions[0].stage, -1);
  EXPECT_EQ(file.instructions[1].keyword, "FROM");
  EXPECT_EQ(file.instructions[2].keyword, "RUN");
  EXPECT_EQ(file.instructions[2].stage, 0);
  EXPECT_EQ(file.instructions[4].stage, 1);
  std::vector<Stage> stages = Stages(file);
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].image, "debian:bookworm");  // the --platform flag is not the image
  EXPECT_EQ(stages[0].name, "build");
  EXPECT_EQ(stages[0].line, 2);
  EXPECT_EQ(stages[1].image, "debian:bookworm-slim");
  EXPECT_EQ(stages[1].name, "");
  ASSERT_EQ(stages[1].instructions.size(), 1u);
  EXPECT_EQ(stages[1].instructions[0]->keyword, "USER");
}

TEST(DockerfileParserTest, ReportsWhatItCannotRead) {
  Dockerfile file = ParseDockerfile("t.Dockerfile",
                                    "# escape=`\n"
                                    "FROM debian:bookworm\n"
                                    "RUNN true\n"
                                    "RUN true \\\n");
  ASSERT_EQ(file.parse_errors.size(), 3u) << Join(file.parse_errors);
  EXPECT_EQ(file.parse_errors[0].ToString(),
            "t.Dockerfile:1: [syntax] an escape directive: this checker reads `\\` as the "
            "escape character");
  EXPECT_EQ(file.parse_errors[1].ToString(), "t.Dockerfile:3: [syntax] unknown instruction RUNN");
  EXPECT_EQ(file.parse_errors[2].ToString(),
            "t.Dockerfile:4: [syntax] the file ends inside a `\\` continuation");
}

TEST(DockerfileParserTest, AnEscapeLineAfterAnInstructionIsAComment) {
  // Directives count only at the top; later this is an ordinary comment.
  Dockerfile file = ParseDockerfile("t.Dockerfile", "FROM debian:bookworm\n# escape=`\n");
  EXPECT_TRUE(file.parse_errors.empty()) << Join(file.parse_errors);
}

TEST(DockerfileParserTest, LexShellSplitsWordsAndOperators) {
  std::vector<ShellToken> tokens = LexShell(R"(a "b c" 'd&&e' f\ g&&h;i|j||k 2>&1 "q\"x" '')");
  std::vector<std::string> texts;
  std::vector<bool> ops;
  for (const ShellToken& token : tokens) {
    texts.push_back(token.text);
    ops.push_back(token.op);
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"a", "b c", "d&&e", "f g", "&&", "h", ";", "i", "|",
                                             "j", "||", "k", "2>&1", "q\"x", ""}));
  EXPECT_EQ(ops, (std::vector<bool>{false, false, false, false, true, false, true, false, true,
                                    false, true, false, false, false, false}));
}

TEST(DockerfileParserTest, ParseRunSkipsFlagsAndAssignments) {
  Dockerfile file = ParseDockerfile(
      "t.Dockerfile",
      "FROM x:1\n"
      "RUN --mount=type=cache,target=/c DEBIAN_FRONTEND=noninteractive apt-get update && "
      "A=1 B=2 make -j2 X=3\n"
      "RUN [\"/bin/true\", \"--flag\"]\n");
  RunCommands shell = ParseRun(file.instructions[1]);
  EXPECT_FALSE(shell.exec_form);
  EXPECT_EQ(shell.commands,
            (std::vector<std::vector<std::string>>{{"apt-get", "update"}, {"make", "-j2", "X=3"}}));
  EXPECT_EQ(shell.operators, (std::vector<std::string>{"&&"}));
  RunCommands exec = ParseRun(file.instructions[2]);
  EXPECT_TRUE(exec.exec_form);
  EXPECT_EQ(exec.commands, (std::vector<std::vector<std::string>>{{"/bin/true", "--flag"}}));
}

TEST(DockerfileParserTest, ExecFormIsAJsonArrayOfStrings) {
  EXPECT_EQ(ExecForm(R"( ["/usr/local/bin/agentry", "nodeagent"] )"),
            (std::vector<std::string>{"/usr/local/bin/agentry", "nodeagent"}));
  EXPECT_EQ(ExecForm("/usr/local/bin/agentry nodeagent"), std::nullopt);
  EXPECT_EQ(ExecForm(R"(["/bin/a", 1])"), std::nullopt);
  EXPECT_EQ(ExecForm(R"(['/bin/a'])"), std::nullopt);  // JSON wants double quotes
  EXPECT_EQ(ExecForm(R"(["/bin/a")"), std::nullopt);
}

// ---------------------------------------------------------------------------------------
// The checker, on a good Dockerfile broken one way at a time.

// Each case below breaks one rule of this file; the line numbers the cases expect are these.
constexpr const char* kGood =
    "# A good Dockerfile: each case below breaks one rule of it.\n"              // 1
    "FROM debian:bookworm AS build\n"                                            // 2
    "WORKDIR /src\n"                                                             // 3
    "COPY . .\n"                                                                 // 4
    "RUN scripts/bootstrap && rm -rf /var/lib/apt/lists/*\n"                     // 5
    "RUN cmake --preset default \\\n"                                            // 6
    "    && cmake --build --preset default --target agentry \\\n"                // 7
    "    && strip --strip-debug build/default/cli/agentry\n"                     // 8
    "FROM debian:bookworm-slim\n"                                                // 9
    "ARG VERSION=1.2.3\n"                                                        // 10
    "ARG REVISION=unknown\n"                                                     // 11
    "LABEL org.opencontainers.image.title=\"t\" \\\n"                            // 12
    "      org.opencontainers.image.description=\"d\" \\\n"                      // 13
    "      org.opencontainers.image.version=\"${VERSION}\" \\\n"                 // 14
    "      org.opencontainers.image.revision=\"${REVISION}\"\n"                  // 15
    "RUN apt-get update \\\n"                                                    // 16
    "    && apt-get install -y --no-install-recommends libc6 libssl3 \\\n"       // 17
    "    && rm -rf /var/lib/apt/lists/*\n"                                       // 18
    "COPY --from=build /src/build/default/cli/agentry /usr/local/bin/agentry\n"  // 19
    "USER 65532:65532\n"                                                         // 20
    "ENTRYPOINT [\"/usr/local/bin/agentry\"]\n";                                 // 21

CheckOptions GoodOptions() { return {.expected_uid = 65532, .expected_version = "1.2.3"}; }

struct BadCase {
  const char* name = "";            // the test's name
  const char* rule = "";            // the rule that must fire
  const char* from = "";            // text of kGood (exactly once) ...
  const char* to = "";              // ... replaced by this
  int line = 0;                     // where the rule must say the problem is
  std::set<std::string> also = {};  // other rules the same break rightly sets off
};

const std::vector<BadCase>& BadCases() {
  static const std::vector<BadCase> cases = {
      // syntax
      {.name = "UnknownInstruction",
       .rule = "syntax",
       .from = "USER 65532:65532",
       .to = "USR 65532:65532\nUSER 65532:65532",
       .line = 20},
      {.name = "Heredoc",
       .rule = "syntax",
       .from = "WORKDIR /src\n",
       .to = "WORKDIR /src\nRUN cat <<EOF\nEOF\n",
       .line = 4},
      {.name = "ContinuationAtEndOfFile",
       .rule = "syntax",
       .from = "[\"/usr/local/bin/agentry\"]\n",
       .to = "[\"/usr/local/bin/agentry\"] \\\n",
       .line = 21},
      {.name = "EscapeDirective",
       .rule = "syntax",
       .from = "# A good",
       .to = "# escape=`\n# A good",
       .line = 1},
      {.name = "InstructionBeforeFrom",
       .rule = "syntax",
       .from = "FROM debian:bookworm AS",
       .to = "ENV A=b\nFROM debian:bookworm AS",
       .line = 2},
      // from-tag: an extra stage, so the build and final stages stay as the stages rule wants
      {.name = "UntaggedFrom",
       .rule = "from-tag",
       .from = "FROM debian:bookworm-slim",
       .to = "FROM busybox AS tools\nFROM debian:bookworm-slim",
       .line = 9},
      {.name = "LatestFrom",
       .rule = "from-tag",
       .from = "FROM debian:bookworm-slim",
       .to = "FROM busybox:latest AS tools\nFROM debian:bookworm-slim",
       .line = 9},
      {.name = "RegistryPortIsNoTag",
       .rule = "from-tag",
       .from = "FROM debian:bookworm-slim",
       .to = "FROM localhost:5000/busybox AS tools\nFROM debian:bookworm-slim",
       .line = 9},
      {.name = "VariableFrom",
       .rule = "from-tag",
       .from = "FROM debian:bookworm-slim",
       .to = "FROM ${BASE} AS tools\nFROM debian:bookworm-slim",
       .line = 9},
      // stages
      {.name = "BuildStageOnAnotherRelease",
       .rule = "stages",
       .from = "FROM debian:bookworm AS build",
       .to = "FROM debian:bullseye AS build",
       .line = 2},
      {.name = "FinalStageNotSlim",
       .rule = "stages",
       .from = "FROM debian:bookworm-slim",
       .to = "FROM debian:bookworm",
       .line = 9},
      {.name = "NoBuildStage",
       .rule = "stages",
       .from = "AS build",
       .to = "AS compile",
       .line = 2,
       .also = {"copy-from-build"}},  // COPY --from=build now names nothing
      {.name = "SingleStage",
       .rule = "stages",
       .from = "FROM debian:bookworm-slim\n",
       .to = "",
       .line = 2,
       .also = {"copy-from-build"}},
      // build-like-ci
      {.name = "NoBootstrap",
       .rule = "build-like-ci",
       .from = "RUN scripts/bootstrap && rm -rf /var/lib/apt/lists/*",
       .to = "RUN true",
       .line = 2},
      {.name = "NoConfigurePreset",
       .rule = "build-like-ci",
       .from = "RUN cmake --preset default",
       .to = "RUN cmake -S . -B build/default",
       .line = 2},
      {.name = "NoBuildTarget",
       .rule = "build-like-ci",
       .from = " --target agentry",
       .to = "",
       .line = 2},
      // apt-get-flags
      {.name = "InstallWithoutYes",
       .rule = "apt-get-flags",
       .from = "install -y --no-install-recommends",
       .to = "install --no-install-recommends",
       .line = 16},
      {.name = "InstallWithRecommends",
       .rule = "apt-get-flags",
       .from = "install -y --no-install-recommends",
       .to = "install -y",
       .line = 16},
      {.name = "AptNotAptGet",
       .rule = "apt-get-flags",
       .from = "&& strip",
       .to = "&& apt show libc6 && strip",
       .line = 6},
      // apt-get-update
      {.name = "InstallWithoutUpdate",
       .rule = "apt-get-update",
       .from = "RUN apt-get update \\\n    && apt-get install",
       .to = "RUN apt-get install",
       .line = 16},
      {.name = "UpdateInItsOwnRun",
       .rule = "apt-get-update",
       .from = "RUN apt-get update \\",
       .to = "RUN apt-get update\nRUN apt-get update \\",
       .line = 16},
      // apt-lists
      {.name = "ListsKept",
       .rule = "apt-lists",
       .from = "libssl3 \\\n    && rm -rf /var/lib/apt/lists/*",
       .to = "libssl3",
       .line = 16},
      {.name = "ListsKeptByBootstrap",
       .rule = "apt-lists",
       .from = "RUN scripts/bootstrap && rm -rf /var/lib/apt/lists/*",
       .to = "RUN scripts/bootstrap",
       .line = 5},
      {.name = "ListsRemovedBeforeInstall",
       .rule = "apt-lists",
       .from = "RUN apt-get update \\\n"
               "    && apt-get install -y --no-install-recommends libc6 libssl3 \\\n"
               "    && rm -rf /var/lib/apt/lists/*",
       .to = "RUN rm -rf /var/lib/apt/lists/* && apt-get update \\\n"
             "    && apt-get install -y --no-install-recommends libc6 libssl3",
       .line = 16},
      // no-sudo
      {.name = "Sudo", .rule = "no-sudo", .from = "&& strip", .to = "&& sudo strip", .line = 6},
      // run-fail-fast
      {.name = "Semicolon",
       .rule = "run-fail-fast",
       .from = "&& strip",
       .to = "; strip",
       .line = 6},
      {.name = "Pipe",
       .rule = "run-fail-fast",
       .from = "build/default/cli/agentry\nFROM",
       .to = "build/default/cli/agentry | cat\nFROM",
       .line = 6},
      {.name = "Background",
       .rule = "run-fail-fast",
       .from = "build/default/cli/agentry\nFROM",
       .to = "build/default/cli/agentry &\nFROM",
       .line = 6},
      // no-add
      {.name = "Add", .rule = "no-add", .from = "COPY . .", .to = "ADD . .", .line = 4},
      // copy-from-build
      {.name = "CopyFromUnknownStage",
       .rule = "copy-from-build",
       .from = "--from=build",
       .to = "--from=builder",
       .line = 19},
      {.name = "CopyFromImage",
       .rule = "copy-from-build",
       .from = "--from=build",
       .to = "--from=busybox:1.36",
       .line = 19},
      {.name = "FinalStageCopiesContext",
       .rule = "copy-from-build",
       .from = "USER 65532",
       .to = "COPY README.md /README.md\nUSER 65532",
       .line = 20},
      {.name = "CopySourceNotBuilt",
       .rule = "copy-from-build",
       .from = "/src/build/default/cli/agentry /usr",
       .to = "/src/cli/main.cc /usr",
       .line = 19},
      // copy-owner
      {.name = "Chown",
       .rule = "copy-owner",
       .from = "COPY --from=build",
       .to = "COPY --chown=65532:65532 --from=build",
       .line = 19},
      // workdir-absolute
      {.name = "RelativeWorkdir",
       .rule = "workdir-absolute",
       .from = "USER 65532",
       .to = "WORKDIR app\nUSER 65532",
       .line = 20},
      // user-nonroot
      {.name = "NoUser", .rule = "user-nonroot", .from = "USER 65532:65532\n", .to = "", .line = 9},
      {.name = "RootUser",
       .rule = "user-nonroot",
       .from = "USER 65532:65532",
       .to = "USER 0",
       .line = 20},
      {.name = "RootGroup",
       .rule = "user-nonroot",
       .from = "USER 65532:65532",
       .to = "USER 65532:0",
       .line = 20},
      {.name = "NamedUser",
       .rule = "user-nonroot",
       .from = "USER 65532:65532",
       .to = "USER nonroot",
       .line = 20},
      {.name = "NotTheOperatorsUid",
       .rule = "user-nonroot",
       .from = "USER 65532:65532",
       .to = "USER 1000:1000",
       .line = 20},
      // entrypoint-exec
      {.name = "ShellFormEntrypoint",
       .rule = "entrypoint-exec",
       .from = "ENTRYPOINT [\"/usr/local/bin/agentry\"]",
       .to = "ENTRYPOINT /usr/local/bin/agentry",
       .line = 21},
      {.name = "NoEntrypoint",
       .rule = "entrypoint-exec",
       .from = "ENTRYPOINT [\"/usr/local/bin/agentry\"]\n",
       .to = "",
       .line = 9},
      {.name = "EntrypointNotCopied",
       .rule = "entrypoint-exec",
       .from = "ENTRYPOINT [\"/usr/local/bin/agentry\"]",
       .to = "ENTRYPOINT [\"/usr/bin/agentry\"]",
       .line = 21},
      {.name = "ShellFormCmd",
       .rule = "entrypoint-exec",
       .from = "ENTRYPOINT [\"/usr/local/bin/agentry\"]\n",
       .to = "ENTRYPOINT [\"/usr/local/bin/agentry\"]\nCMD --help\n",
       .line = 22},
      // labels
      {.name = "NoRevisionLabel",
       .rule = "labels",
       .from = " \\\n      org.opencontainers.image.revision=\"${REVISION}\"",
       .to = "",
       .line = 9},
      // version
      {.name = "VersionNotTheProjects",
       .rule = "version",
       .from = "ARG VERSION=1.2.3",
       .to = "ARG VERSION=9.9.9",
       .line = 10},
      {.name = "VersionWithoutDefault",
       .rule = "version",
       .from = "ARG VERSION=1.2.3",
       .to = "ARG VERSION",
       .line = 10},
      {.name = "NoVersionArg",
       .rule = "version",
       .from = "ARG VERSION=1.2.3\n",
       .to = "",
       .line = 9},
      {.name = "VersionLabelNotTheArg",
       .rule = "version",
       .from = "version=\"${VERSION}\"",
       .to = "version=\"1.2.3\"",
       .line = 9},
      // no-secrets
      {.name = "TokenInEnv",
       .rule = "no-secrets",
       .from = "USER 65532",
       .to = "ENV GITHUB_TOKEN=abc\nUSER 65532",
       .line = 20},
      {.name = "PasswordArg",
       .rule = "no-secrets",
       .from = "ARG REVISION=unknown",
       .to = "ARG DB_PASSWORD",
       .line = 11},
  };
  return cases;
}

TEST(DockerfileCheckerTest, TheGoodDockerfileHasNoFindings) {
  std::vector<Finding> findings = Check(ParseDockerfile("good.Dockerfile", kGood), GoodOptions());
  EXPECT_TRUE(findings.empty()) << Join(findings);
}

TEST(DockerfileCheckerTest, EveryRuleHasABadCase) {
  for (const Rule& rule : Rules()) {
    bool covered = false;
    for (const BadCase& c : BadCases()) covered = covered || rule.id == std::string(c.rule);
    EXPECT_TRUE(covered) << "no bad case makes rule " << rule.id << " fire";
  }
}

TEST(DockerfileCheckerTest, AcceptsWhatItShould) {
  // Variants of the good file that are still good: an earlier stage or a digest as FROM,
  // combined short apt-get flags, a redirection, a copy into a directory.
  std::string text = kGood;
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  };
  replace("FROM debian:bookworm-slim",
          "FROM build AS again\nFROM busybox@sha256:0123 AS tools\nFROM debian:bookworm-slim");
  replace("install -y --no-install-recommends", "install -qy --no-install-recommends");
  replace("&& strip", "&& echo built 2>&1 && strip");
  replace("/usr/local/bin/agentry\n", "/usr/local/bin/\n");
  std::vector<Finding> findings = Check(ParseDockerfile("ok.Dockerfile", text), GoodOptions());
  EXPECT_TRUE(findings.empty()) << Join(findings);
}

class DockerfileCheckerCatches : public testing::TestWithParam<BadCase> {};

TEST_P(DockerfileCheckerCatches, ExactlyItsRuleFiresAtItsLine) {
  const BadCase& bad = GetParam();
  std::string text = kGood;
  size_t at = text.find(bad.from);
  ASSERT_NE(at, std::string::npos) << "the case's text is not in the good file: " << bad.from;
  ASSERT_EQ(text.find(bad.from, at + 1), std::string::npos) << "ambiguous: " << bad.from;
  text.replace(at, std::string(bad.from).size(), bad.to);

  std::vector<Finding> findings = Check(ParseDockerfile("bad.Dockerfile", text), GoodOptions());
  std::set<std::string> fired;
  for (const Finding& finding : findings) fired.insert(finding.rule);
  std::set<std::string> expected = bad.also;
  expected.insert(bad.rule);
  EXPECT_EQ(fired, expected) << Join(findings);

  // The message names the file, the line and the rule.
  const std::string prefix =
      "bad.Dockerfile:" + std::to_string(bad.line) + ": [" + std::string(bad.rule) + "] ";
  bool named = false;
  for (const Finding& finding : findings) {
    named = named ||
            (finding.ToString().starts_with(prefix) && finding.ToString().size() > prefix.size());
  }
  EXPECT_TRUE(named) << "no finding starts with \"" << prefix << "\":" << Join(findings);
}

INSTANTIATE_TEST_SUITE_P(Cases, DockerfileCheckerCatches, testing::ValuesIn(BadCases()),
                         [](const testing::TestParamInfo<BadCase>& info) {
                           return std::string(info.param.name);
                         });

// ---------------------------------------------------------------------------------------
// The project's Dockerfiles: every rule, one test each.

std::vector<std::string> RuleIds() {
  std::vector<std::string> ids;
  for (const Rule& rule : Rules()) ids.emplace_back(rule.id);
  return ids;
}

class DockerfileRule : public testing::TestWithParam<std::string> {};

TEST_P(DockerfileRule, HoldsInEveryImage) {
  std::optional<int64_t> uid = OperatorUid();
  std::optional<std::string> version = ProjectVersion();
  ASSERT_TRUE(uid) << "kNonRootUid not found in operator/render.cc; update this test";
  ASSERT_TRUE(version) << "project(agentry VERSION x.y.z) not found in CMakeLists.txt";
  const CheckOptions options{.expected_uid = *uid, .expected_version = *version};
  std::vector<Dockerfile> files = ProjectDockerfiles();
  ASSERT_EQ(files.size(), 3u) << "expected agent, nodeagent and operator Dockerfiles";
  for (const Dockerfile& file : files) {
    for (const Finding& finding : CheckRule(GetParam(), file, options)) {
      ADD_FAILURE() << finding.ToString();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, DockerfileRule, testing::ValuesIn(RuleIds()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// ---------------------------------------------------------------------------------------
// The project's Dockerfiles against the project.

// What each image is for, which fixes what it must contain and run.
struct Image {
  std::string file{};                     // images/NAME.Dockerfile
  std::vector<std::string> entrypoint{};  // the ENTRYPOINT
  std::vector<std::string> copies{};      // COPY --from=build sources: only these binaries
  std::vector<std::string> targets{};     // cmake --build targets
  // Subcommands the pods pass after the ENTRYPOINT ("" for none): the operator renders the
  // agent pod's containers with args `runtime ...` and `state ...` (operator/render.cc).
  std::vector<std::string> pod_subcommands{};
  std::set<std::string> extra_packages{};  // installed for something other than a library
};

const std::vector<Image>& Images() {
  static const std::vector<Image> images = {
      {.file = "images/agent.Dockerfile",
       .entrypoint = {"/usr/local/bin/agentry"},
       .copies = {"/src/build/default/cli/agentry"},
       .targets = {"agentry"},
       .pod_subcommands = {"runtime", "state"},
       .extra_packages = {"ca-certificates"}},  // HTTP and MCP tools over TLS
      {.file = "images/nodeagent.Dockerfile",
       .entrypoint = {"/usr/local/bin/agentry", "nodeagent"},
       .copies = {"/src/build/default/cli/agentry"},
       .targets = {"agentry"},
       .pod_subcommands = {""},
       .extra_packages = {}},
      {.file = "images/operator.Dockerfile",
       .entrypoint = {"/usr/local/bin/agentry-operator"},
       .copies = {"/src/build/default/operator/agentry-operator"},
       .targets = {"agentry-operator"},
       .pod_subcommands = {""},
       .extra_packages = {}},
  };
  return images;
}

Dockerfile Load(const Image& image) {
  return ParseDockerfile(image.file, ReadFile(fs::path(kSource) / image.file));
}

// Where a path in the build stage's build tree (/src/build/default/cli/agentry) is in this
// build: the build dir the test was configured with, whatever its preset.
std::optional<fs::path> InBuildDir(const Dockerfile& file, const std::string& source) {
  const std::string tree = BuildTreeInImage(file);
  if (!source.starts_with(tree)) return std::nullopt;
  return fs::path(kBinary) / source.substr(tree.size());
}

TEST(DockerfileImagesTest, EveryDockerfileIsAKnownImage) {
  std::set<std::string> known;
  for (const Image& image : Images()) known.insert(image.file);
  std::set<std::string> found;
  for (const Dockerfile& file : ProjectDockerfiles()) found.insert(file.path);
  EXPECT_EQ(found, known) << "a Dockerfile without an entry in Images() is checked only by the "
                             "rules; add what it must contain";
}

TEST(DockerfileImagesTest, ExpectationsAreReadFromTheSources) {
  EXPECT_EQ(OperatorUid(), std::optional<int64_t>(65532));
  std::optional<std::string> version = ProjectVersion();
  ASSERT_TRUE(version);
  EXPECT_TRUE(std::regex_match(*version, std::regex(R"(\d+\.\d+\.\d+)"))) << *version;
}

TEST(DockerfileImagesTest, EachImageCopiesOnlyItsBinariesAndRunsThem) {
  for (const Image& image : Images()) {
    SCOPED_TRACE(image.file);
    Dockerfile file = Load(image);
    std::vector<std::string> sources;
    for (const StageCopy& copy : FinalStageCopies(file)) sources.push_back(copy.source);
    EXPECT_EQ(sources, image.copies);
    EXPECT_EQ(BuildTargets(file), image.targets);
    std::optional<std::vector<std::string>> entrypoint;
    std::vector<Stage> stages = Stages(file);
    for (const Instruction* ins : stages.back().instructions) {
      if (ins->keyword == "ENTRYPOINT") entrypoint = ExecForm(ins->args);
    }
    EXPECT_EQ(entrypoint, image.entrypoint);
  }
}

TEST(DockerfileImagesTest, TheOperatorRendersTheSubcommandsTheAgentImageExpects) {
  // The agent image's ENTRYPOINT is the bare binary because the pods name the subcommand.
  std::string render = ReadFile(fs::path(kSource) / "operator/render.cc");
  for (const std::string& subcommand : Images()[0].pod_subcommands) {
    EXPECT_TRUE(
        std::regex_search(render, std::regex(R"("args",\s*Json::array\(\{")" + subcommand + "\"")))
        << "operator/render.cc no longer runs `" << subcommand << " ...` in the agent image";
  }
}

// build.ninja of this build tree, which lists every file the build produces and every target.
std::string BuildNinja() { return ReadFile(fs::path(kBinary) / "build.ninja"); }

TEST(DockerfileImagesTest, BuildTargetsAreCMakeTargets) {
  std::string ninja = BuildNinja();
  ASSERT_FALSE(ninja.empty()) << "no build.ninja in " << kBinary << " (the presets use Ninja)";
  for (const Image& image : Images()) {
    for (const std::string& target : BuildTargets(Load(image))) {
      EXPECT_NE(ninja.find("\nbuild " + target + ": phony "), std::string::npos)
          << image.file << " builds --target " << target << ", which CMake does not define";
    }
  }
}

TEST(DockerfileImagesTest, CopiedFilesAreWhatTheTargetsBuiltProduce) {
  std::string ninja = BuildNinja();
  ASSERT_FALSE(ninja.empty()) << "no build.ninja in " << kBinary;
  for (const Image& image : Images()) {
    Dockerfile file = Load(image);
    std::vector<std::string> targets = BuildTargets(file);
    for (const StageCopy& copy : FinalStageCopies(file)) {
      std::optional<fs::path> local = InBuildDir(file, copy.source);
      ASSERT_TRUE(local) << image.file << ":" << copy.line << ": " << copy.source;
      std::string relative = fs::relative(*local, fs::path(kBinary)).string();
      // CMake's Ninja generator links target T's file with a rule named ..._LINKER__T_<config>.
      size_t edge = ninja.find("\nbuild " + relative + ": ");
      ASSERT_NE(edge, std::string::npos)
          << image.file << ":" << copy.line << ": the build produces no " << relative;
      std::string rule = ninja.substr(edge, ninja.find('\n', edge + 1) - edge);
      bool by_a_target_built = false;
      for (const std::string& target : targets) {
        by_a_target_built =
            by_a_target_built || rule.find("_LINKER__" + target + "_") != std::string::npos;
      }
      EXPECT_TRUE(by_a_target_built) << image.file << ":" << copy.line << ": " << relative
                                     << " is not linked by the targets the image builds";
    }
  }
}

// The built file an image copies, or nullopt (with the reason) when this tree has not built it.
std::optional<fs::path> BuiltFile(const Dockerfile& file, const StageCopy& copy, std::string* why) {
  std::optional<fs::path> local = InBuildDir(file, copy.source);
  if (!local) {
    *why = copy.source + " is not in the build tree";
    return std::nullopt;
  }
  if (!fs::exists(*local)) {
    *why = local->string() +
           " is not built in this tree (the asan preset builds only unit tests; the default "
           "preset builds it before this test)";
    return std::nullopt;
  }
  return local;
}

TEST(DockerfileImagesTest, CopiedFilesExistInTheBuildDir) {
  for (const Image& image : Images()) {
    Dockerfile file = Load(image);
    for (const StageCopy& copy : FinalStageCopies(file)) {
      std::string why;
      std::optional<fs::path> local = BuiltFile(file, copy, &why);
      if (!local) GTEST_SKIP() << why;
      EXPECT_TRUE(fs::is_regular_file(*local)) << *local;
      EXPECT_NE(fs::status(*local).permissions() & fs::perms::owner_exec, fs::perms::none)
          << *local << " is not executable";
    }
  }
}

TEST(DockerfileImagesTest, EntrypointsRunSubcommandsTheBinariesHave) {
  for (const Image& image : Images()) {
    Dockerfile file = Load(image);
    for (const StageCopy& copy : FinalStageCopies(file)) {
      if (copy.destination != image.entrypoint[0]) continue;
      std::string why;
      std::optional<fs::path> local = BuiltFile(file, copy, &why);
      if (!local) GTEST_SKIP() << why;
      for (const std::string& subcommand : image.pod_subcommands) {
        // The container's argv: ENTRYPOINT, then the pod's args; --help proves the parser
        // knows the subcommand (an unknown one exits non-zero).
        std::string command = ShellQuote(local->string());
        for (size_t i = 1; i < image.entrypoint.size(); ++i) {
          command += " " + ShellQuote(image.entrypoint[i]);
        }
        if (!subcommand.empty()) command += " " + ShellQuote(subcommand);
        command += " --help 2>&1";
        CommandResult result = RunCommand(command);
        EXPECT_EQ(result.status, 0) << image.file << ": " << command << "\n" << result.output;
      }
    }
  }
}

// The Debian package of each shared library a binary names in its NEEDED entries.
struct LinkedPackages {
  std::map<std::string, std::string> package_of{};  // library -> package
  std::vector<std::string> unknown{};               // libraries dpkg owns no file for
  bool sanitized = false;                           // linked against a sanitizer runtime
};

LinkedPackages PackagesLinkedBy(const fs::path& binary) {
  LinkedPackages out;
  // objdump -p lists the NEEDED names; ldd resolves them to the files dpkg knows.
  CommandResult dump = RunCommand("objdump -p " + ShellQuote(binary.string()));
  CommandResult ldd = RunCommand("ldd " + ShellQuote(binary.string()));
  std::map<std::string, std::string> path_of;
  std::istringstream ldd_lines(ldd.output);
  for (std::string line; std::getline(ldd_lines, line);) {
    std::istringstream words(line);
    std::string name, arrow, path;
    words >> name >> arrow >> path;
    if (arrow == "=>") {
      path_of[name] = path;
    } else if (name.starts_with("/")) {  // the dynamic loader: "/lib64/ld-linux... (0x...)"
      path_of[fs::path(name).filename().string()] = name;
    }
  }
  std::vector<std::string> needed;
  std::istringstream dump_lines(dump.output);
  for (std::string line; std::getline(dump_lines, line);) {
    std::istringstream words(line);
    std::string key, library;
    words >> key >> library;
    if (key != "NEEDED") continue;
    needed.push_back(library);
    if (library.starts_with("libasan") || library.starts_with("libubsan") ||
        library.starts_with("libtsan")) {
      out.sanitized = true;
    }
  }
  // dpkg records either the path ldd prints or, with merged /usr, its canonical form; one
  // query for all of them (each dpkg -S reads the whole database). Its lines read
  // "libssl3:amd64: /usr/lib/x86_64-linux-gnu/libssl.so.3".
  std::string query = "dpkg -S";
  for (const auto& [library, path] : path_of) {
    query += " " + ShellQuote(path) + " " + ShellQuote(fs::weakly_canonical(path).string());
  }
  std::map<std::string, std::string> owner_of;  // path -> package
  std::istringstream owners(RunCommand(query + " 2>/dev/null").output);
  for (std::string line; std::getline(owners, line);) {
    size_t separator = line.find(": /");
    if (separator == std::string::npos) continue;
    owner_of[line.substr(separator + 2)] = line.substr(0, line.find(':'));
  }
  for (const std::string& library : needed) {
    std::string package;
    auto it = path_of.find(library);
    if (it != path_of.end()) {
      for (const std::string& path : {it->second, fs::weakly_canonical(it->second).string()}) {
        if (package.empty() && owner_of.contains(path)) package = owner_of[path];
      }
    }
    if (package.empty()) {
      out.unknown.push_back(library);
    } else {
      out.package_of[library] = package;
    }
  }
  return out;
}

// Runs `check` on each image's binaries' packages, or says why it cannot.
void ForEachImagesLinkedPackages(
    const std::function<void(const Image&, const Dockerfile&, const LinkedPackages&)>& check) {
  for (const char* tool : {"objdump", "ldd", "dpkg"}) {
    if (!HaveTool(tool)) GTEST_SKIP() << tool << " is missing (apt-get install binutils dpkg)";
  }
  for (const Image& image : Images()) {
    Dockerfile file = Load(image);
    for (const StageCopy& copy : FinalStageCopies(file)) {
      std::string why;
      std::optional<fs::path> local = BuiltFile(file, copy, &why);
      if (!local) GTEST_SKIP() << why;
      LinkedPackages linked = PackagesLinkedBy(*local);
      if (linked.sanitized) {
        GTEST_SKIP() << *local << " is a sanitizer build; the images ship the default preset's";
      }
      ASSERT_FALSE(linked.package_of.empty()) << "no NEEDED libraries read from " << *local;
      check(image, file, linked);
    }
  }
}

TEST(DockerfileImagesTest, RuntimeStageInstallsThePackageOfEveryLinkedLibrary) {
  ForEachImagesLinkedPackages(
      [](const Image& image, const Dockerfile& file, const LinkedPackages& linked) {
        std::vector<std::string> installed = FinalStagePackages(file);
        EXPECT_TRUE(linked.unknown.empty())
            << image.file << ": no Debian package owns these libraries; install them another way: "
            << testing::PrintToString(linked.unknown);
        for (const auto& [library, package] : linked.package_of) {
          EXPECT_NE(std::find(installed.begin(), installed.end(), package), installed.end())
              << image.file << ": the binary needs " << library << " from " << package
              << ", which the final stage does not install";
        }
      });
}

TEST(DockerfileImagesTest, RuntimeStageInstallsNothingElse) {
  ForEachImagesLinkedPackages(
      [](const Image& image, const Dockerfile& file, const LinkedPackages& linked) {
        std::set<std::string> needed = image.extra_packages;
        for (const auto& [library, package] : linked.package_of) needed.insert(package);
        for (const std::string& package : FinalStagePackages(file)) {
          EXPECT_TRUE(needed.contains(package))
              << image.file << " installs " << package
              << ", which no library the binary links comes from (and is not an extra it needs)";
        }
      });
}

TEST(DockerfileImagesTest, DockerignoreKeepsTheHostBuildTreeOut) {
  // BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile. Without `build` in it the
  // host's build/default/CMakeCache.txt enters the build stage, and CMake refuses a cache
  // made for another source directory.
  for (const Image& image : Images()) {
    fs::path ignore = fs::path(kSource) / (image.file + ".dockerignore");
    ASSERT_TRUE(fs::exists(ignore)) << ignore;
    std::istringstream lines(ReadFile(ignore));
    std::set<std::string> patterns;
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line[0] != '#') patterns.insert(line);
    }
    EXPECT_TRUE(patterns.contains("build") || patterns.contains("build/") ||
                patterns.contains("/build"))
        << ignore;
    // The build stage copies these, so no pattern may exclude them.
    for (const char* needed : {".git", "scripts", "CMakeLists.txt", "CMakePresets.json"}) {
      EXPECT_FALSE(patterns.contains(needed)) << ignore << " excludes " << needed;
    }
  }
}

TEST(DockerfileImagesTest, ReadmeListsEveryRule) {
  std::string readme = ReadFile(fs::path(kSource) / "images/README.md");
  ASSERT_FALSE(readme.empty());
  for (const Rule& rule : Rules()) {
    EXPECT_NE(readme.find("`" + std::string(rule.id) + "`"), std::string::npos)
        << "images/README.md does not list rule " << rule.id;
  }
}

}  // namespace
}  // namespace agentry::images
