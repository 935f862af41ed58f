// Runs the built `agentry` binary and checks what a user sees: output and exit codes.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/version.h"

namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh, stderr with stdout.
CommandResult Shell(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  CommandResult run;
  char buf[1024];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) run.output.append(buf, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

CommandResult Agentry(const std::string& args) {
  return Shell(std::string(AGENTRY_BIN) + " " + args);
}

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/agentry-cli-test-XXXXXX.yaml";
  const int fd = mkstemps(path, 5);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

TEST(CliTest, Version) {
  CommandResult r = Agentry("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.rfind("agentry " + std::string(agentry::Version()), 0), 0u) << r.output;
}

TEST(CliTest, NoSubcommandIsAUsageError) {
  CommandResult r = Agentry("");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("selfcheck"), std::string::npos) << r.output;
}

TEST(CliTest, BadLogLevelIsRefused) {
  CommandResult r = Agentry("--log-level loud validate " + std::string(AGENTRY_EXAMPLES_DIR) +
                            "/triage-agent.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown log level \"loud\""), std::string::npos) << r.output;
}

TEST(CliTest, ValidateGoodExample) {
  CommandResult r = Agentry("validate " + std::string(AGENTRY_EXAMPLES_DIR) + "/triage-agent.yaml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok (ManagedAgent team-a/triage)"), std::string::npos) << r.output;
}

TEST(CliTest, ValidateReportsEveryBadFieldAndSkipsOtherKinds) {
  const std::string path = WriteTemp(
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n"
      "apiVersion: agentry.dev/v1alpha1\nkind: ManagedAgent\nmetadata: {name: a}\n"
      "spec:\n  model: {name: m, source: {file: m.gguf}}\n"
      "  sessions: {maxTurns: 0}\n  replicas: many\n");
  CommandResult r = Agentry("validate " + path);
  unlink(path.c_str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("(document 1): skipped (kind Service)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(document 2): invalid"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("spec.sessions.maxTurns: must be a positive integer, got 0"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("spec.replicas: must be an integer, got \"many\""), std::string::npos);
}

// A tool schema the call constraint cannot express is refused here, as the runtime would
// refuse it at start, naming the tool by its place in spec.tools.
TEST(CliTest, ValidateChecksToolSchemasAgainstTheCallConstraint) {
  const std::string path = WriteTemp(
      "apiVersion: agentry.dev/v1alpha1\nkind: ManagedAgent\nmetadata: {name: a}\n"
      "spec:\n  model: {name: m, source: {file: m.gguf}}\n  tools:\n"
      "    - {name: remember, builtin: remember}\n"
      "    - name: search\n"
      "      parameters: {type: object, properties: {q: {type: string, pattern: '^a'}}}\n"
      "      http: {url: 'http://x/'}\n");
  CommandResult r = Agentry("validate " + path);
  unlink(path.c_str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("spec.tools[1] (search).parameters.properties.q.pattern: "
                          "unsupported keyword"),
            std::string::npos)
      << r.output;
}

TEST(CliTest, ValidateMissingFileAndBadYaml) {
  CommandResult missing = Agentry("validate /nonexistent/agent.yaml");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("/nonexistent/agent.yaml: cannot open"), std::string::npos);
  const std::string path = WriteTemp("spec: [unclosed\n");
  CommandResult bad = Agentry("validate " + path);
  unlink(path.c_str());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("invalid YAML at line"), std::string::npos) << bad.output;
}

TEST(CliTest, SelfcheckPassesOnThisMachine) {
  CommandResult r =
      Agentry("selfcheck --manifest " + std::string(AGENTRY_EXAMPLES_DIR) + "/triage-agent.yaml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("GET /metrics"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ManagedAgent team-a/triage"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checks passed"), std::string::npos) << r.output;
}

TEST(CliTest, SelfcheckFailsOnABadManifest) {
  const std::string path = WriteTemp("apiVersion: agentry.dev/v1alpha1\nkind: ManagedAgent\n");
  CommandResult r = Agentry("selfcheck --manifest " + path);
  unlink(path.c_str());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("[FAIL]"), std::string::npos) << r.output;
}

TEST(CliTest, BenchKeepsWeightsMappedWithinTheMemoryBound) {
  // A 42 MB F32 model: a private copy of the weights would break the private bound.
  const std::string model = "/tmp/agentry-cli-mem-" + std::to_string(getpid()) + ".gguf";
  CommandResult made = Agentry("make-test-model -o " + model +
                               " --dim 384 --layers 6 --heads 6 --kv-heads 2 --type f32");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  CommandResult r = Agentry("bench -m " + model + " -t 2 -p 64 -n 16 -r 1");
  unlink(model.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("pp64: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tg16: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("memory: peak RSS"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("EXCEEDED"), std::string::npos) << r.output;
}

TEST(CliTest, RunGeneratesAndRefusesWhatItCannotDo) {
  const std::string model = "/tmp/agentry-cli-run-" + std::to_string(getpid()) + ".gguf";
  ASSERT_EQ(Agentry("make-test-model -o " + model).exit_code, 0);
  CommandResult ok = Agentry("run -m " + model + " -p \"once upon a time\" -n 8 --temp 0");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("once upon a time"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("generated"), std::string::npos) << ok.output;
  CommandResult bad_utf8 = Agentry("run -m " + model + " -p \"$(printf 'ok\\377')\" -n 1");
  EXPECT_EQ(bad_utf8.exit_code, 1);
  EXPECT_NE(bad_utf8.output.find("-p: invalid UTF-8 at byte 2"), std::string::npos)
      << bad_utf8.output;
  CommandResult too_long = Agentry("run -m " + model + " -p hi -n 100 -c 16");
  EXPECT_EQ(too_long.exit_code, 1);
  EXPECT_NE(too_long.output.find("do not fit in the context of 16"), std::string::npos);
  CommandResult bad_temp = Agentry("run -m " + model + " -p hi --temp -1");
  EXPECT_EQ(bad_temp.exit_code, 1);
  EXPECT_NE(bad_temp.output.find("sampler.temperature"), std::string::npos);
  CommandResult missing = Agentry("run -m /nonexistent.gguf -p hi");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("/nonexistent.gguf: No such file"), std::string::npos)
      << missing.output;
  unlink(model.c_str());
}

TEST(CliTest, RunChatUsesTheTemplateOrSaysWhyItCannot) {
  const std::string model = "/tmp/agentry-cli-chat-" + std::to_string(getpid()) + ".gguf";
  ASSERT_EQ(Agentry("make-test-model -o " + model).exit_code, 0);
  // The test model has no tokenizer.chat_template.
  CommandResult none = Agentry("run -m " + model + " -p hi --chat");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no tokenizer.chat_template; name a format with --chat-template"),
            std::string::npos)
      << none.output;
  CommandResult chatml =
      Agentry("run -m " + model + " -p hi --chat --chat-template chatml --system terse -n 2");
  EXPECT_EQ(chatml.exit_code, 0) << chatml.output;
  EXPECT_NE(chatml.output.find("<|im_start|>system\nterse<|im_end|>\n<|im_start|>user\nhi"
                               "<|im_end|>\n<|im_start|>assistant\n"),
            std::string::npos)
      << chatml.output;
  CommandResult unknown = Agentry("run -m " + model + " -p hi --chat --chat-template vicuna");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("supported: chatml"), std::string::npos) << unknown.output;
  CommandResult no_chat = Agentry("run -m " + model + " -p hi --system terse");
  EXPECT_EQ(no_chat.exit_code, 1);
  EXPECT_NE(no_chat.output.find("need --chat"), std::string::npos) << no_chat.output;
  unlink(model.c_str());
}

TEST(CliTest, CacheTypeQ8_0RunsAndOtherValuesAreRefused) {
  const std::string model = "/tmp/agentry-cli-kv-" + std::to_string(getpid()) + ".gguf";
  const std::string small = "/tmp/agentry-cli-kv-small-" + std::to_string(getpid()) + ".gguf";
  ASSERT_EQ(Agentry("make-test-model -o " + model + " --dim 128 --heads 4").exit_code, 0);
  ASSERT_EQ(Agentry("make-test-model -o " + small).exit_code, 0);  // heads of 16 values
  CommandResult ok =
      Agentry("run -m " + model + " -p \"once upon a time\" -n 8 --temp 0 --cache-type q8_0");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("generated"), std::string::npos) << ok.output;
  CommandResult bench = Agentry("bench -m " + model + " -t 2 -p 16 -n 4 -r 1 --cache-type q8_0");
  EXPECT_EQ(bench.exit_code, 0) << bench.output;
  EXPECT_NE(bench.output.find("KV cache q8_0"), std::string::npos) << bench.output;
  CommandResult bad = Agentry("run -m " + model + " -p hi --cache-type q4_0");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("--cache-type: want f16 or q8_0, got \"q4_0\""), std::string::npos)
      << bad.output;
  CommandResult bad_bench = Agentry("bench -m " + model + " --cache-type F16");
  EXPECT_EQ(bad_bench.exit_code, 1);
  EXPECT_NE(bad_bench.output.find("want f16 or q8_0"), std::string::npos) << bad_bench.output;
  CommandResult unsuited = Agentry("run -m " + small + " -p hi --cache-type q8_0");
  EXPECT_EQ(unsuited.exit_code, 1);
  EXPECT_NE(unsuited.output.find("--cache-type q8_0: a Q8_0 KV cache needs a head size that is "
                                 "a multiple of 32; 16 in this model"),
            std::string::npos)
      << unsuited.output;
  unlink(model.c_str());
  unlink(small.c_str());
}

// `agentry devices` on a fake GPU node: each GPU with the note that the CPU backend serves
// it, the device plugin's selection honoured, JSON on request, a malformed selection refused.
TEST(CliTest, DevicesListsAFakeGpuNodeAndHonoursTheDevicePlugin) {
  namespace fs = std::filesystem;
  char dir[] = "/tmp/agentry-cli-devices-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  fs::create_directories(root + "/sys/devices/system/cpu");
  fs::create_directories(root + "/dev");
  std::ofstream(root + "/sys/devices/system/cpu/online") << "0-3\n";
  for (int i = 0; i < 2; ++i) {
    const std::string bus = "0000:1" + std::to_string(i) + ":00.0";
    std::ofstream(root + "/dev/nvidia" + std::to_string(i)).flush();
    fs::create_directories(root + "/proc/driver/nvidia/gpus/" + bus);
    std::ofstream(root + "/proc/driver/nvidia/gpus/" + bus + "/information")
        << "Model: \t\t NVIDIA L4\nGPU UUID: \t GPU-" << i << "\nBus Location: \t " << bus
        << "\nDevice Minor: \t " << i << "\n";
  }
  const std::string roots =
      " --dev-root " + root + "/dev --proc-root " + root + "/proc --sys-root " + root + "/sys";
  unsetenv("NVIDIA_VISIBLE_DEVICES");
  CommandResult all = Agentry("devices" + roots);
  EXPECT_EQ(all.exit_code, 0) << all.output;
  EXPECT_NE(all.output.find("nvidia0  nvidia-gpu  NVIDIA L4, 0000:10:00.0, GPU-0; backend cpu "
                            "(no CUDA backend in this build"),
            std::string::npos)
      << all.output;
  EXPECT_NE(all.output.find("nvidia1  nvidia-gpu"), std::string::npos) << all.output;

  setenv("NVIDIA_VISIBLE_DEVICES", "1", 1);
  CommandResult one = Agentry("devices --json" + roots);
  EXPECT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(one.output.find("\"nvidia0\""), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("\"id\": \"nvidia1\""), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("\"backend\": \"cpu\""), std::string::npos) << one.output;

  setenv("NVIDIA_VISIBLE_DEVICES", "gpu1", 1);
  CommandResult bad = Agentry("devices" + roots);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("NVIDIA_VISIBLE_DEVICES=\"gpu1\": \"gpu1\" is not a GPU index"),
            std::string::npos)
      << bad.output;
  unsetenv("NVIDIA_VISIBLE_DEVICES");
  fs::remove_all(root);
}

}  // namespace

// The node daemon as the DaemonSet runs it: it serves on its socket (mode 0660) and /metrics
// until SIGTERM, then drains, removes the socket and exits 0.
TEST(CliTest, NodeagentServesUntilSigtermThenDrains) {
  const std::string dir = "/tmp/agentry-cli-node-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  ASSERT_EQ(Agentry("make-test-model -o " + dir + "/m.gguf").exit_code, 0);
  const std::string script = dir + "/run.sh";
  std::ofstream(script) << "bin=" << AGENTRY_BIN << "; dir=" << dir << R"SH(
"$bin" nodeagent --socket "$dir/run/n.sock" --model "tiny=$dir/m.gguf,template=chatml" \
  --metrics-port 0 --grace-period 2 -t 1 > "$dir/log" 2>&1 &
pid=$!
for i in $(seq 200); do grep -q '"msg":"serving"' "$dir/log" && break; sleep 0.05; done
echo "mode=$(stat -c %a "$dir/run/n.sock")"
port=$(grep -o '"metrics_port":[0-9]*' "$dir/log" | cut -d: -f2)
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
grep -o 'agentry_nodeagent_kv_cache_capacity_bytes{device="cpu"} [0-9e.+]*' <&3
kill -TERM "$pid"
wait "$pid"
echo "exit=$?"
[ -e "$dir/run/n.sock" ] && echo "socket left behind"
cat "$dir/log"
)SH";
  const CommandResult r = Shell("bash " + script);
  EXPECT_NE(r.output.find("mode=660"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kv_cache_capacity_bytes{device=\"cpu\"} 1073741824"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("exit=0"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("socket left behind"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"msg\":\"draining\""), std::string::npos) << r.output;

  const CommandResult bad = Agentry("nodeagent --model nonsense");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("expected NAME=PATH"), std::string::npos) << bad.output;
  const CommandResult missing =
      Agentry("nodeagent --model m=/nonexistent.gguf --socket " + dir + "/x.sock");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("/nonexistent.gguf"), std::string::npos) << missing.output;
  std::filesystem::remove_all(dir);
}
