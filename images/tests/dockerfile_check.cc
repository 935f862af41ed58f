#include "images/tests/dockerfile_check.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>

namespace agentry::images {
namespace {

// The instructions Docker knows; anything else is a typo the build would refuse.
constexpr std::string_view kKeywords[] = {
    "ADD",    "ARG",   "CMD",         "COPY",  "ENTRYPOINT", "ENV",
    "EXPOSE", "FROM",  "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD",
    "RUN",    "SHELL", "STOPSIGNAL",  "USER",  "VOLUME",     "WORKDIR"};

// The Debian release CI builds on (scripts/bootstrap installs its packages by name), and its
// slim variant for running: the same release, so the runtime packages carry the very
// libraries the build linked.
constexpr std::string_view kBuildImage = "debian:bookworm";
constexpr std::string_view kRuntimeImage = "debian:bookworm-slim";
constexpr std::string_view kBuildStageName = "build";

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  return s;
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view Trim(std::string_view s) { return TrimRight(TrimLeft(s)); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A parser directive is `# key=value` before anything else in the file.
bool IsDirective(std::string_view comment, std::string* key) {
  std::string_view body = TrimLeft(comment.substr(1));
  size_t eq = body.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  std::string_view name = TrimRight(body.substr(0, eq));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  *key = Lower(name);
  return true;
}

void Add(std::vector<Finding>* out, const Dockerfile& file, int line, const char* rule,
         std::string message) {
  out->push_back({.file = file.path, .line = line, .rule = rule, .message = std::move(message)});
}

// Leading --name[=value] flags of FROM, RUN and COPY, and what follows them.
struct Flags {
  std::vector<std::string> flags;  // without the leading --
  std::string_view rest;
};

Flags SplitFlags(std::string_view args) {
  Flags out;
  std::string_view rest = TrimLeft(args);
  while (rest.size() > 2 && rest.substr(0, 2) == "--" &&
         std::isalpha(static_cast<unsigned char>(rest[2]))) {
    size_t end = 0;
    while (end < rest.size() && !std::isspace(static_cast<unsigned char>(rest[end]))) ++end;
    out.flags.emplace_back(rest.substr(2, end - 2));
    rest = TrimLeft(rest.substr(end));
  }
  out.rest = rest;
  return out;
}

// The value of --name=value, or nullopt; `--name` alone has the value "".
std::optional<std::string> FlagValue(const Flags& flags, std::string_view name) {
  for (const std::string& flag : flags.flags) {
    if (flag == name) return std::string();
    if (flag.size() > name.size() && flag.compare(0, name.size(), name) == 0 &&
        flag[name.size()] == '=') {
      return flag.substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> out;
  for (ShellToken& token : LexShell(text)) out.push_back(std::move(token.text));
  return out;
}

// The arguments of COPY/ADD after the flags: sources then destination (JSON or words).
std::vector<std::string> CopyArgs(std::string_view rest) {
  if (std::optional<std::vector<std::string>> exec = ExecForm(rest)) return *exec;
  return Words(rest);
}

const Stage* FindStage(const std::vector<Stage>& stages, std::string_view name) {
  for (const Stage& stage : stages) {
    if (stage.name == name) return &stage;
  }
  return nullptr;
}

const Stage* FinalStage(const std::vector<Stage>& stages) {
  return stages.empty() ? nullptr : &stages.back();
}

// One apt-get command split into subcommand, options and operands (packages).
struct AptGet {
  std::string subcommand;
  std::vector<std::string> options;
  std::vector<std::string> packages;
};

std::optional<AptGet> ParseAptGet(const std::vector<std::string>& words) {
  if (words.empty() || words[0] != "apt-get") return std::nullopt;
  AptGet out;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (!word.empty() && word[0] == '-') {
      out.options.push_back(word);
      // These take their value as the next word (apt-get(8)).
      if (word == "-o" || word == "-t" || word == "-c") ++i;
    } else if (out.subcommand.empty()) {
      out.subcommand = word;
    } else {
      out.packages.push_back(word);
    }
  }
  return out;
}

bool IsAptInstall(const std::vector<std::string>& words) {
  std::optional<AptGet> apt = ParseAptGet(words);
  return apt && apt->subcommand == "install";
}

bool IsAptUpdate(const std::vector<std::string>& words) {
  std::optional<AptGet> apt = ParseAptGet(words);
  return apt && apt->subcommand == "update";
}

bool IsBootstrap(const std::vector<std::string>& words) {
  return !words.empty() && (words[0] == "scripts/bootstrap" || words[0] == "./scripts/bootstrap" ||
                            (words[0].size() > 18 && words[0].ends_with("/scripts/bootstrap")));
}

bool IsCmake(const std::vector<std::string>& words) {
  return !words.empty() && words[0] == "cmake";
}

bool HasWord(const std::vector<std::string>& words, std::string_view word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

// `--preset default` or `--preset=default`.
bool UsesPreset(const std::vector<std::string>& words, std::string_view preset) {
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "--preset" && i + 1 < words.size() && words[i + 1] == preset) return true;
    if (words[i] == "--preset=" + std::string(preset)) return true;
  }
  return false;
}

// The targets of one `cmake --build` command: --target/-t A B ..., --target=A.
std::vector<std::string> TargetsOf(const std::vector<std::string>& words) {
  std::vector<std::string> out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i].starts_with("--target=")) {
      out.push_back(words[i].substr(9));
    } else if (words[i] == "--target" || words[i] == "-t") {
      while (i + 1 < words.size() && !words[i + 1].starts_with("-")) out.push_back(words[++i]);
    }
  }
  return out;
}

// ---- the rules, in the order images/README.md numbers them ----

void CheckSyntax(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Finding& error : file.parse_errors) out->push_back(error);
  bool seen_from = false;
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword == "FROM") seen_from = true;
    if (!seen_from && ins.keyword != "ARG") {
      Add(out, file, ins.line, "syntax", ins.keyword + " before the first FROM");
    }
    // A heredoc's body would be read as instructions by this checker (and skipped by it).
    if ((ins.keyword == "RUN" || ins.keyword == "COPY" || ins.keyword == "ADD") &&
        ins.args.find("<<") != std::string::npos) {
      Add(out, file, ins.line, "syntax",
          "heredoc in " + ins.keyword + ": write the commands as one && chain");
    }
  }
}

void CheckFromTag(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  std::set<std::string> earlier;  // stage names, which FROM may name instead of an image
  for (const Stage& stage : Stages(file)) {
    const std::string& image = stage.image;
    if (image.empty()) {
      Add(out, file, stage.line, "from-tag", "FROM names no image");
    } else if (image.find('$') != std::string::npos) {
      Add(out, file, stage.line, "from-tag",
          "FROM " + image + " takes its image from a variable; pin a literal tag");
    } else if (!earlier.contains(Lower(image)) && image.find('@') == std::string::npos) {
      // The tag is after the last ':' that follows the last '/' (a registry may have a port).
      size_t slash = image.rfind('/');
      size_t colon = image.find(':', slash == std::string::npos ? 0 : slash);
      if (colon == std::string::npos) {
        Add(out, file, stage.line, "from-tag",
            "FROM " + image + " has no tag; it would be `latest`, whatever that is today");
      } else if (image.substr(colon + 1) == "latest") {
        Add(out, file, stage.line, "from-tag",
            "FROM " + image + " uses `latest`; pin a release tag such as debian:bookworm");
      }
    }
    if (!stage.name.empty()) earlier.insert(stage.name);
  }
}

void CheckStages(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  if (stages.empty()) {
    Add(out, file, 1, "stages", "no FROM");
    return;
  }
  if (stages.size() < 2) {
    Add(out, file, stages[0].line, "stages",
        "one stage: build in a stage named `build` and copy its outputs into a slim one, so "
        "the compilers and sources stay out of the image");
  }
  const Stage* build = FindStage(stages, kBuildStageName);
  if (build == nullptr) {
    Add(out, file, stages[0].line, "stages", "no stage named `build` (FROM ... AS build)");
  } else if (build->image != kBuildImage) {
    Add(out, file, build->line, "stages",
        "the build stage is FROM " + build->image + "; CI builds on " + std::string(kBuildImage) +
            " (scripts/bootstrap installs bookworm packages)");
  }
  const Stage& final_stage = stages.back();
  if (stages.size() >= 2 && final_stage.name == kBuildStageName) {
    Add(out, file, final_stage.line, "stages", "the final stage is the build stage");
  }
  if (stages.size() >= 2 && final_stage.image != kRuntimeImage) {
    Add(out, file, final_stage.line, "stages",
        "the final stage is FROM " + final_stage.image + "; run on " + std::string(kRuntimeImage) +
            " (the build's release, so its packages carry the libraries the build linked)");
  }
}

void CheckBuildLikeCi(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  const Stage* build = FindStage(stages, kBuildStageName);
  if (build == nullptr) return;  // `stages` says so
  // The steps of .ci/run's default pass, in order; `step` is how many were seen.
  static const char* const kSteps[] = {
      "scripts/bootstrap (CI's package installer)",
      "`cmake --preset default` (CI's configure)",
      "`cmake --build --preset default --target ...` (CI's build, of the targets shipped)",
  };
  size_t step = 0;
  for (const Instruction* ins : build->instructions) {
    if (ins->keyword != "RUN") continue;
    for (const std::vector<std::string>& words : ParseRun(*ins).commands) {
      bool configure = IsCmake(words) && !HasWord(words, "--build") && UsesPreset(words, "default");
      bool compile = IsCmake(words) && HasWord(words, "--build") && UsesPreset(words, "default") &&
                     !TargetsOf(words).empty();
      if ((step == 0 && IsBootstrap(words)) || (step == 1 && configure) || (step == 2 && compile)) {
        ++step;
      }
    }
  }
  if (step < 3) {
    Add(out, file, build->line, "build-like-ci",
        std::string("the build stage does not run ") + kSteps[step] +
            (step > 0 ? " after the steps before it" : ""));
  }
}

void CheckAptGetFlags(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword != "RUN") continue;
    for (const std::vector<std::string>& words : ParseRun(ins).commands) {
      if (!words.empty() && (words[0] == "apt" || words[0] == "aptitude")) {
        Add(out, file, ins.line, "apt-get-flags",
            words[0] + " has no stable command-line interface for scripts; use apt-get");
        continue;
      }
      std::optional<AptGet> apt = ParseAptGet(words);
      if (!apt || apt->subcommand != "install") continue;
      bool yes = false;
      bool no_recommends = false;
      for (const std::string& option : apt->options) {
        if (option == "--yes" || option == "--assume-yes" ||
            (!option.starts_with("--") && option.find('y') != std::string::npos)) {
          yes = true;
        }
        if (option == "--no-install-recommends") no_recommends = true;
      }
      if (!yes) {
        Add(out, file, ins.line, "apt-get-flags",
            "apt-get install without -y: the build has no terminal to answer the prompt");
      }
      if (!no_recommends) {
        Add(out, file, ins.line, "apt-get-flags",
            "apt-get install without --no-install-recommends: recommended packages are not "
            "needed and grow the image");
      }
    }
  }
}

void CheckAptGetUpdate(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword != "RUN") continue;
    const RunCommands run = ParseRun(ins);
    bool updated = false;
    bool update_pending = false;  // an update not yet followed by an install
    for (const std::vector<std::string>& words : run.commands) {
      if (IsAptUpdate(words)) {
        updated = true;
        update_pending = true;
      } else if (IsAptInstall(words)) {
        if (!updated) {
          Add(out, file, ins.line, "apt-get-update",
              "apt-get install without apt-get update before it in the same RUN: the lists "
              "are absent, or stale in a cached layer");
        }
        update_pending = false;
      }
    }
    if (update_pending) {
      Add(out, file, ins.line, "apt-get-update",
          "apt-get update not followed by apt-get install in the same RUN: a cached update "
          "layer goes stale while later installs reuse it");
    }
  }
}

void CheckAptLists(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword != "RUN") continue;
    const RunCommands run = ParseRun(ins);
    std::optional<size_t> last_install;
    for (size_t i = 0; i < run.commands.size(); ++i) {
      if (IsAptInstall(run.commands[i]) || IsBootstrap(run.commands[i])) last_install = i;
    }
    if (!last_install) continue;
    bool removed = false;
    for (size_t i = *last_install + 1; i < run.commands.size(); ++i) {
      const std::vector<std::string>& words = run.commands[i];
      if (!words.empty() && words[0] == "rm" && HasWord(words, "/var/lib/apt/lists/*")) {
        removed = true;
      }
    }
    if (!removed) {
      Add(out, file, ins.line, "apt-lists",
          "installs packages but does not `rm -rf /var/lib/apt/lists/*` after it in the same "
          "RUN: the package lists stay in the layer");
    }
  }
}

void CheckNoSudo(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword != "RUN") continue;
    for (const std::vector<std::string>& words : ParseRun(ins).commands) {
      if (!words.empty() && words[0] == "sudo") {
        Add(out, file, ins.line, "no-sudo",
            "sudo: RUN is root until USER changes it, and the images have no sudo");
      }
    }
  }
}

void CheckRunFailFast(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword != "RUN") continue;
    for (const std::string& op : ParseRun(ins).operators) {
      if (op == ";") {
        Add(out, file, ins.line, "run-fail-fast",
            "`;` runs the next command after a failure; chain commands with &&");
      } else if (op == "|") {
        Add(out, file, ins.line, "run-fail-fast",
            "a pipe's status is its last command's (/bin/sh has no pipefail), so a failure "
            "before it passes");
      } else if (op == "&") {
        Add(out, file, ins.line, "run-fail-fast",
            "`&` runs a command in the background; nothing waits for it or sees it fail");
      }
    }
  }
}

void CheckNoAdd(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword == "ADD") {
      Add(out, file, ins.line, "no-add",
          "ADD fetches URLs and unpacks archives implicitly; use COPY");
    }
  }
}

void CheckCopyFromBuild(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  const std::string tree = BuildTreeInImage(file);
  for (const Stage& stage : stages) {
    const bool final_stage =
        stage.index == static_cast<int>(stages.size()) - 1 && stages.size() >= 2;
    for (const Instruction* ins : stage.instructions) {
      if (ins->keyword != "COPY") continue;
      Flags flags = SplitFlags(ins->args);
      std::optional<std::string> from = FlagValue(flags, "from");
      if (from) {
        // Only an earlier stage: any other --from is an image pulled without a pinned tag.
        bool known = false;
        for (const Stage& earlier : stages) {
          if (earlier.index < stage.index &&
              (earlier.name == Lower(*from) || std::to_string(earlier.index) == *from)) {
            known = true;
          }
        }
        if (!known) {
          Add(out, file, ins->line, "copy-from-build",
              "COPY --from=" + *from + " names no earlier stage");
        }
      }
      if (!final_stage) continue;
      if (!from) {
        Add(out, file, ins->line, "copy-from-build",
            "the final stage copies from the build context; it takes only build outputs "
            "(COPY --from=build)");
        continue;
      }
      if (Lower(*from) != kBuildStageName) {
        Add(out, file, ins->line, "copy-from-build",
            "the final stage copies from stage " + *from + "; only `build` is allowed");
        continue;
      }
      std::vector<std::string> args = CopyArgs(flags.rest);
      if (args.size() < 2) {
        Add(out, file, ins->line, "copy-from-build", "COPY needs a source and a destination");
        continue;
      }
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (!args[i].starts_with(tree)) {
          Add(out, file, ins->line, "copy-from-build",
              "COPY --from=build " + args[i] + " is not in the build stage's build tree " + tree +
                  ": the image must ship what the build produced");
        }
      }
    }
  }
}

void CheckCopyOwner(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return;
  for (const Instruction* ins : final_stage->instructions) {
    if ((ins->keyword == "COPY" || ins->keyword == "ADD") &&
        FlagValue(SplitFlags(ins->args), "chown")) {
      Add(out, file, ins->line, "copy-owner",
          "--chown in the final stage: files stay root-owned so the user that runs the "
          "binary cannot replace it");
    }
  }
}

void CheckWorkdirAbsolute(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword != "WORKDIR") continue;
    std::vector<std::string> words = Words(ins.args);
    if (words.empty() || !words[0].starts_with("/")) {
      Add(out, file, ins.line, "workdir-absolute",
          "WORKDIR " + ins.args + " is not absolute; it would depend on the previous WORKDIR");
    }
  }
}

void CheckUserNonroot(const Dockerfile& file, const CheckOptions& options,
                      std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return;
  const Instruction* user = nullptr;
  for (const Instruction* ins : final_stage->instructions) {
    if (ins->keyword == "USER") user = ins;
  }
  if (user == nullptr) {
    Add(out, file, final_stage->line, "user-nonroot",
        "the final stage sets no USER, so the image runs as root");
    return;
  }
  std::vector<std::string> words = Words(user->args);
  std::string value = words.empty() ? "" : words[0];
  size_t colon = value.find(':');
  std::string uid = value.substr(0, colon);
  std::string gid = colon == std::string::npos ? "" : value.substr(colon + 1);
  if (!AllDigits(uid) || (colon != std::string::npos && !AllDigits(gid))) {
    Add(out, file, user->line, "user-nonroot",
        "USER " + value +
            " is not numeric: Kubernetes' runAsNonRoot can verify only a numeric uid");
    return;
  }
  if (std::stoll(uid) == 0 || (!gid.empty() && std::stoll(gid) == 0)) {
    Add(out, file, user->line, "user-nonroot", "USER " + value + " is root");
    return;
  }
  if (options.expected_uid >= 0 && (std::stoll(uid) != options.expected_uid ||
                                    (!gid.empty() && std::stoll(gid) != options.expected_uid))) {
    Add(out, file, user->line, "user-nonroot",
        "USER " + value + ", but the operator's pods run as " +
            std::to_string(options.expected_uid) + " (kNonRootUid, operator/render.cc)");
  }
}

void CheckEntrypointExec(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return;
  const Instruction* entrypoint = nullptr;
  for (const Instruction* ins : final_stage->instructions) {
    if (ins->keyword == "ENTRYPOINT") entrypoint = ins;
    if (ins->keyword == "CMD" && !ExecForm(ins->args)) {
      Add(out, file, ins->line, "entrypoint-exec", "CMD in shell form; write it as a JSON array");
    }
  }
  if (entrypoint == nullptr) {
    Add(out, file, final_stage->line, "entrypoint-exec", "the final stage has no ENTRYPOINT");
    return;
  }
  std::optional<std::vector<std::string>> argv = ExecForm(entrypoint->args);
  if (!argv) {
    Add(out, file, entrypoint->line, "entrypoint-exec",
        "ENTRYPOINT in shell form: /bin/sh becomes PID 1 and SIGTERM never reaches the "
        "binary; write it as a JSON array");
    return;
  }
  if (argv->empty() || !(*argv)[0].starts_with("/")) {
    Add(out, file, entrypoint->line, "entrypoint-exec",
        "ENTRYPOINT must start with the binary's absolute path");
    return;
  }
  bool copied = false;
  for (const StageCopy& copy : FinalStageCopies(file)) {
    if (copy.destination == (*argv)[0]) copied = true;
  }
  if (!copied) {
    Add(out, file, entrypoint->line, "entrypoint-exec",
        "ENTRYPOINT runs " + (*argv)[0] + ", which no COPY --from=build puts in the image");
  }
}

// The final stage's LABEL keys and values.
std::vector<std::pair<std::string, std::string>> FinalLabels(const Dockerfile& file) {
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return labels;
  for (const Instruction* ins : final_stage->instructions) {
    if (ins->keyword != "LABEL") continue;
    for (const std::string& word : Words(ins->args)) {
      size_t eq = word.find('=');
      if (eq == std::string::npos) continue;
      labels.emplace_back(word.substr(0, eq), word.substr(eq + 1));
    }
  }
  return labels;
}

constexpr const char* kRequiredLabels[] = {
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
};

void CheckLabels(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return;
  std::vector<std::pair<std::string, std::string>> labels = FinalLabels(file);
  for (const char* key : kRequiredLabels) {
    bool set = false;
    for (const auto& [name, value] : labels) {
      if (name == key && !value.empty()) set = true;
    }
    if (!set) {
      Add(out, file, final_stage->line, "labels",
          std::string("the final stage sets no LABEL ") + key);
    }
  }
}

void CheckVersion(const Dockerfile& file, const CheckOptions& options, std::vector<Finding>* out) {
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return;
  const Instruction* arg = nullptr;
  std::optional<std::string> value;
  for (const Instruction* ins : final_stage->instructions) {
    if (ins->keyword != "ARG") continue;
    for (const std::string& word : Words(ins->args)) {
      if (word == "VERSION") {
        arg = ins;
        value.reset();
      } else if (word.starts_with("VERSION=")) {
        arg = ins;
        value = word.substr(8);
      }
    }
  }
  if (arg == nullptr) {
    Add(out, file, final_stage->line, "version",
        "the final stage declares no ARG VERSION for its version label");
  } else if (!value || value->empty()) {
    Add(out, file, arg->line, "version", "ARG VERSION has no default");
  } else if (!options.expected_version.empty() && *value != options.expected_version) {
    Add(out, file, arg->line, "version",
        "ARG VERSION=" + *value + ", but CMakeLists.txt's project() is version " +
            options.expected_version);
  }
  for (const auto& [name, label] : FinalLabels(file)) {
    if (name == "org.opencontainers.image.version" && label != "${VERSION}" &&
        label != "$VERSION") {
      Add(out, file, final_stage->line, "version",
          "LABEL org.opencontainers.image.version=" + label + " is not ${VERSION}");
    }
  }
}

void CheckNoSecrets(const Dockerfile& file, const CheckOptions&, std::vector<Finding>* out) {
  static const char* const kSecretWords[] = {"PASSWORD", "PASSWD",      "SECRET",    "TOKEN",
                                             "API_KEY",  "PRIVATE_KEY", "CREDENTIAL"};
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword != "ENV" && ins.keyword != "ARG") continue;
    std::vector<std::string> words = Words(ins.args);
    std::vector<std::string> names;
    for (const std::string& word : words) {
      size_t eq = word.find('=');
      if (eq != std::string::npos) names.push_back(word.substr(0, eq));
    }
    // `ENV NAME value` and `ARG NAME`: the first word is the name.
    if (names.empty() && !words.empty()) names.push_back(words[0]);
    for (const std::string& name : names) {
      for (const char* secret : kSecretWords) {
        if (Upper(name).find(secret) != std::string::npos) {
          Add(out, file, ins.line, "no-secrets",
              ins.keyword + " " + name +
                  ": ARG and ENV values stay in the image's history; mount secrets with "
                  "RUN --mount=type=secret");
          break;
        }
      }
    }
  }
}

}  // namespace

std::string Finding::ToString() const {
  return file + ":" + std::to_string(line) + ": [" + rule + "] " + message;
}

Dockerfile ParseDockerfile(std::string_view path, std::string_view text) {
  Dockerfile file;
  file.path = std::string(path);
  int stage = -1;
  auto emit = [&](std::string_view logical, int line) {
    logical = Trim(logical);
    if (logical.empty()) return;  // a continuation of nothing but comments
    size_t end = 0;
    while (end < logical.size() && !std::isspace(static_cast<unsigned char>(logical[end]))) ++end;
    Instruction ins{.line = line,
                    .keyword = Upper(logical.substr(0, end)),
                    .args = std::string(Trim(logical.substr(end))),
                    .stage = stage};
    if (std::find(std::begin(kKeywords), std::end(kKeywords), ins.keyword) == std::end(kKeywords)) {
      file.parse_errors.push_back({.file = file.path,
                                   .line = line,
                                   .rule = "syntax",
                                   .message = "unknown instruction " + ins.keyword});
    }
    if (ins.keyword == "FROM") ins.stage = ++stage;
    file.instructions.push_back(std::move(ins));
  };

  bool directives_allowed = true;  // only before any comment, blank line or instruction
  bool continuing = false;
  std::string logical;
  int start_line = 0;
  int number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t newline = text.find('\n', pos);
    std::string_view raw = text.substr(
        pos, newline == std::string_view::npos ? std::string_view::npos : newline - pos);
    pos = newline == std::string_view::npos ? text.size() : newline + 1;
    ++number;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    std::string_view trimmed = TrimLeft(raw);
    // Blank and comment lines are dropped, inside a continuation too (as Docker does).
    if (trimmed.empty()) {
      directives_allowed = false;
      continue;
    }
    if (trimmed[0] == '#') {
      std::string key;
      if (directives_allowed && IsDirective(trimmed, &key) && key == "escape") {
        file.parse_errors.push_back(
            {.file = file.path,
             .line = number,
             .rule = "syntax",
             .message = "an escape directive: this checker reads `\\` as the escape character"});
      }
      if (!(directives_allowed && IsDirective(trimmed, &key))) directives_allowed = false;
      continue;
    }
    directives_allowed = false;
    std::string_view content = TrimRight(raw);
    const bool continues = !content.empty() && content.back() == '\\';
    if (continues) content.remove_suffix(1);
    if (!continuing) {
      logical.clear();
      start_line = number;
    }
    logical += content;
    continuing = continues;
    if (!continuing) emit(logical, start_line);
  }
  if (continuing) {
    file.parse_errors.push_back({.file = file.path,
                                 .line = start_line,
                                 .rule = "syntax",
                                 .message = "the file ends inside a `\\` continuation"});
    emit(logical, start_line);
  }
  return file;
}

std::vector<Stage> Stages(const Dockerfile& file) {
  std::vector<Stage> stages;
  for (const Instruction& ins : file.instructions) {
    if (ins.keyword == "FROM") {
      std::vector<std::string> words = Words(SplitFlags(ins.args).rest);
      Stage stage{.index = static_cast<int>(stages.size()), .line = ins.line};
      if (!words.empty()) stage.image = words[0];
      if (words.size() >= 3 && Lower(words[1]) == "as") stage.name = Lower(words[2]);
      stages.push_back(std::move(stage));
    } else if (!stages.empty()) {
      stages.back().instructions.push_back(&ins);
    }
  }
  return stages;
}

std::vector<ShellToken> LexShell(std::string_view text) {
  const std::string_view s = text;
  std::vector<ShellToken> out;
  std::string word;
  bool in_word = false;  // set by quotes too, so '' is an (empty) word
  auto flush = [&] {
    if (in_word) out.push_back({.text = word, .op = false});
    word.clear();
    in_word = false;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    // In 2>&1 and &> the & belongs to a redirection, which stays part of the word.
    const bool redirection =
        c == '&' && ((i > 0 && s[i - 1] == '>') || (i + 1 < s.size() && s[i + 1] == '>'));
    if (c == '\'') {
      in_word = true;
      size_t end = s.find('\'', i + 1);
      if (end == std::string_view::npos) end = s.size();
      word.append(s.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      in_word = true;
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        // Inside double quotes a backslash escapes only these (POSIX sh).
        if (s[i] == '\\' && i + 1 < s.size() &&
            std::string_view("\"\\$`").find(s[i + 1]) != std::string_view::npos) {
          ++i;
        }
        word += s[i];
      }
    } else if (c == '\\') {
      if (i + 1 < s.size()) {
        in_word = true;
        word += s[++i];
      }
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else if ((c == '&' && !redirection) || c == '|' || c == ';') {
      flush();
      std::string op(1, c);
      if (c != ';' && i + 1 < s.size() && s[i + 1] == c) op += s[++i];
      out.push_back({.text = op, .op = true});
    } else {
      word += c;
      in_word = true;
    }
  }
  flush();
  return out;
}

RunCommands ParseRun(const Instruction& run) {
  RunCommands out;
  std::string_view rest = SplitFlags(run.args).rest;
  if (std::optional<std::vector<std::string>> exec = ExecForm(rest)) {
    out.exec_form = true;
    out.commands.push_back(*exec);
    return out;
  }
  std::vector<std::string> command;
  bool assignments = true;  // leading NAME=value words set the command's environment
  auto finish = [&] {
    if (!command.empty()) out.commands.push_back(std::move(command));
    command.clear();
    assignments = true;
  };
  for (ShellToken& token : LexShell(rest)) {
    if (token.op) {
      finish();
      out.operators.push_back(token.text);
      continue;
    }
    if (assignments) {
      size_t eq = token.text.find('=');
      bool is_assignment = eq != std::string::npos && eq > 0 &&
                           std::all_of(token.text.begin(), token.text.begin() + eq, [](char c) {
                             return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                           });
      if (is_assignment) continue;
      assignments = false;
    }
    command.push_back(std::move(token.text));
  }
  finish();
  return out;
}

std::optional<std::vector<std::string>> ExecForm(std::string_view args) {
  args = Trim(args);
  if (args.empty() || args.front() != '[') return std::nullopt;
  nlohmann::json json = nlohmann::json::parse(args, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const nlohmann::json& element : json) {
    if (!element.is_string()) return std::nullopt;
    out.push_back(element.get<std::string>());
  }
  return out;
}

std::string BuildTreeInImage(const Dockerfile& file) {
  std::vector<Stage> stages = Stages(file);
  std::string workdir = "/";
  if (const Stage* build = FindStage(stages, kBuildStageName)) {
    for (const Instruction* ins : build->instructions) {
      if (ins->keyword == "WORKDIR") {
        std::vector<std::string> words = Words(ins->args);
        if (!words.empty()) workdir = words[0];
      }
    }
  }
  if (!workdir.ends_with("/")) workdir += "/";
  return workdir + "build/default/";
}

std::vector<StageCopy> FinalStageCopies(const Dockerfile& file) {
  std::vector<StageCopy> out;
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return out;
  for (const Instruction* ins : final_stage->instructions) {
    if (ins->keyword != "COPY") continue;
    Flags flags = SplitFlags(ins->args);
    std::optional<std::string> from = FlagValue(flags, "from");
    std::vector<std::string> args = CopyArgs(flags.rest);
    if (!from || args.size() < 2) continue;
    const std::string& destination = args.back();
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      std::string target = destination;
      if (target.ends_with("/")) target += args[i].substr(args[i].rfind('/') + 1);
      out.push_back({.line = ins->line, .from = *from, .source = args[i], .destination = target});
    }
  }
  return out;
}

std::vector<std::string> BuildTargets(const Dockerfile& file) {
  std::vector<std::string> out;
  std::vector<Stage> stages = Stages(file);
  const Stage* build = FindStage(stages, kBuildStageName);
  if (build == nullptr) return out;
  for (const Instruction* ins : build->instructions) {
    if (ins->keyword != "RUN") continue;
    for (const std::vector<std::string>& words : ParseRun(*ins).commands) {
      if (!IsCmake(words) || !HasWord(words, "--build")) continue;
      for (std::string& target : TargetsOf(words)) out.push_back(std::move(target));
    }
  }
  return out;
}

std::vector<std::string> FinalStagePackages(const Dockerfile& file) {
  std::vector<std::string> out;
  std::vector<Stage> stages = Stages(file);
  const Stage* final_stage = FinalStage(stages);
  if (final_stage == nullptr) return out;
  for (const Instruction* ins : final_stage->instructions) {
    if (ins->keyword != "RUN") continue;
    for (const std::vector<std::string>& words : ParseRun(*ins).commands) {
      std::optional<AptGet> apt = ParseAptGet(words);
      if (!apt || apt->subcommand != "install") continue;
      out.insert(out.end(), apt->packages.begin(), apt->packages.end());
    }
  }
  return out;
}

const std::vector<Rule>& Rules() {
  static const std::vector<Rule> rules = {
      {"syntax", "the file parses: known instructions, no heredocs, no escape directive",
       CheckSyntax},
      {"from-tag", "every FROM is pinned to a tag (or digest), never `latest` or none",
       CheckFromTag},
      {"stages", "a `build` stage FROM debian:bookworm, a final stage FROM debian:bookworm-slim",
       CheckStages},
      {"build-like-ci",
       "the build stage runs scripts/bootstrap, cmake --preset default, cmake --build "
       "--preset default --target ...",
       CheckBuildLikeCi},
      {"apt-get-flags", "apt-get (never apt) install with -y and --no-install-recommends",
       CheckAptGetFlags},
      {"apt-get-update", "apt-get update and apt-get install in the same RUN, update first",
       CheckAptGetUpdate},
      {"apt-lists", "a RUN that installs packages ends with rm -rf /var/lib/apt/lists/*",
       CheckAptLists},
      {"no-sudo", "no sudo in RUN", CheckNoSudo},
      {"run-fail-fast", "RUN chains commands with &&: no `;`, no `|`, no `&`", CheckRunFailFast},
      {"no-add", "COPY, never ADD", CheckNoAdd},
      {"copy-from-build",
       "COPY --from names an earlier stage; the final stage copies only from the build "
       "stage's build tree",
       CheckCopyFromBuild},
      {"copy-owner", "no --chown in the final stage: binaries stay root-owned", CheckCopyOwner},
      {"workdir-absolute", "every WORKDIR is absolute", CheckWorkdirAbsolute},
      {"user-nonroot", "the final stage's USER is numeric, not 0, and the uid the operator renders",
       CheckUserNonroot},
      {"entrypoint-exec",
       "the final stage's ENTRYPOINT (and any CMD) is in exec form and runs a copied binary",
       CheckEntrypointExec},
      {"labels",
       "the final stage sets the org.opencontainers.image title, description, "
       "version and revision labels",
       CheckLabels},
      {"version", "ARG VERSION defaults to the project's version and feeds the version label",
       CheckVersion},
      {"no-secrets", "no ARG or ENV named like a password, token, secret or key", CheckNoSecrets},
  };
  return rules;
}

std::vector<Finding> Check(const Dockerfile& file, const CheckOptions& options) {
  std::vector<Finding> out;
  for (const Rule& rule : Rules()) rule.check(file, options, &out);
  std::stable_sort(out.begin(), out.end(),
                   [](const Finding& a, const Finding& b) { return a.line < b.line; });
  return out;
}

std::vector<Finding> CheckRule(std::string_view rule_id, const Dockerfile& file,
                               const CheckOptions& options) {
  for (const Rule& rule : Rules()) {
    if (rule.id == rule_id) {
      std::vector<Finding> out;
      rule.check(file, options, &out);
      return out;
    }
  }
  std::fprintf(stderr, "CheckRule: no rule %.*s\n", static_cast<int>(rule_id.size()),
               rule_id.data());
  std::abort();
}

}  // namespace agentry::images
