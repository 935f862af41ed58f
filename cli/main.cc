// agentry — the command-line tool for people. Subcommands live in their own files; later
// issues add `sessions` and `approve`.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/approve.h"
#include "cli/audit.h"
#include "cli/chat.h"
#include "cli/devices.h"
#include "cli/nodeagent.h"
#include "cli/run.h"
#include "cli/runtime.h"
#include "cli/selfcheck.h"
#include "cli/state.h"
#include "cli/train.h"
#include "cli/up.h"
#include "cli/validate.h"
#include "common/log/log.h"
#include "common/version.h"

namespace {

// The options every client of a runtime's API takes to find it (cli/runtime_endpoint.h):
// the agent by name (a positional, or --agent where positionals mean something else), the
// `agentry up` directory, or the URL outright.
void AddRuntimeLocation(CLI::App* command, std::string* agent, std::string* dir, std::string* url,
                        bool agent_positional = true) {
  command->add_option(agent_positional ? "agent" : "--agent", *agent,
                      "the agent's name as `agentry up` runs it (default: the only one running)");
  command->add_option("--dir", *dir, "the `agentry up` directory (default .agentry/NAME)");
  command->add_option("--url", *url, "the runtime's API, e.g. http://127.0.0.1:8080");
}

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

  cli::DevicesOptions devices_options;
  CLI::App* devices = app.add_subcommand(
      "devices",
      "List this node's devices as the node daemon sees them (CPU, NVIDIA GPUs, AWS Neuron), "
      "honouring NVIDIA_VISIBLE_DEVICES, AWS_NEURON_VISIBLE_DEVICES and NEURON_RT_VISIBLE_CORES.");
  devices->add_option("--dev-root", devices_options.dev_root, "where /dev is (default /dev)");
  devices->add_option("--proc-root", devices_options.proc_root, "where /proc is (default /proc)");
  devices->add_option("--sys-root", devices_options.sys_root, "where /sys is (default /sys)");
  devices->add_flag("--json", devices_options.json, "print a JSON array instead of lines");

  cli::UpOptions up_options;
  CLI::App* up = app.add_subcommand(
      "up",
      "Run one agent's whole data plane locally: the node daemon, the state sidecar and the "
      "runtime as processes of this binary, with the API on --port. Ctrl-C stops all three.");
  up->add_option("-f,--file", up_options.manifest, "the ManagedAgent (YAML)")->required();
  up->add_option("--model-file", up_options.model_file,
                 "the GGUF model (default: spec.model.source.file)");
  up->add_option("--dir", up_options.dir, "sockets, logs and state (default .agentry/NAME)");
  up->add_option("--host", up_options.host, "the API's address (default 127.0.0.1)");
  up->add_option("--port", up_options.port, "the API's port (default 8080)");
  up->add_option("--max-tokens", up_options.max_tokens, "most tokens of one reply (default 512)");

  cli::ChatOptions chat_options;
  CLI::App* chat = app.add_subcommand(
      "chat",
      "Talk to an agent: one line is one message, the reply streams as it is generated. Finds "
      "the agent `agentry up` runs by its name (or give --url). Ctrl-C stops a reply; Ctrl-D "
      "ends.");
  AddRuntimeLocation(chat, &chat_options.agent, &chat_options.dir, &chat_options.url);
  chat->add_option("--session", chat_options.session, "resume (or create) this session id");
  chat->add_option("--user", chat_options.user, "on behalf of whom (default $USER)");
  chat->add_flag("--stats", chat_options.stats,
                 "after each reply, the tokens prefilled, reused from the KV, and generated");
  chat->add_option("--timeout", chat_options.timeout_s,
                   "seconds of silence mid-reply before giving up (default 300)");

  cli::AuditOptions audit_options;
  CLI::App* audit = app.add_subcommand(
      "audit",
      "An agent's hash-chained audit log: `verify` checks the chain and names the first record "
      "edited, deleted or reordered (exit 1); `list` prints every record as a JSON line.");
  audit->add_option("action", audit_options.action, "verify or list")->required();
  AddRuntimeLocation(audit, &audit_options.agent, &audit_options.dir, &audit_options.url);
  audit->add_option("--session", audit_options.session, "list: only this session's records");

  cli::ApproveOptions approve_options;
  CLI::App* approve = app.add_subcommand(
      "approve",
      "Decide a tool call an agent paused for approval (requiresApproval): approve runs exactly "
      "that call, --deny gives the model the denial as its result; the turn then goes on.");
  approve->add_option("session", approve_options.session, "the session")->required();
  approve->add_option("call", approve_options.call,
                      "the call id (default: the one the session waits on)");
  AddRuntimeLocation(approve, &approve_options.agent, &approve_options.dir, &approve_options.url,
                     /*agent_positional=*/false);
  approve->add_option("--user", approve_options.user, "who decides (recorded in the audit log)")
      ->required();
  approve->add_flag("--deny", approve_options.deny, "deny instead of approve");
  approve->add_option("--reason", approve_options.reason, "why (shown to the model on a denial)");

  cli::RuntimeOptions runtime_options;
  CLI::App* runtime_cmd = app.add_subcommand(
      "runtime",
      "Run the agent runtime: the session HTTP API (docs/api.md) for one ManagedAgent, over "
      "the node daemon and the state sidecar. Stops on SIGTERM after running turns finish.");
  runtime_cmd->add_option("-c,--config", runtime_options.config, "the ManagedAgent (YAML)")
      ->required();
  runtime_cmd->add_option("--host", runtime_options.host,
                          "address to listen on (default 127.0.0.1)");
  runtime_cmd->add_option("--port", runtime_options.port,
                          "port to listen on (default 8080; 0: a free port, logged)");
  runtime_cmd->add_option("--state-socket", runtime_options.state_socket,
                          "the state sidecar's socket (default /run/agentry/state.sock)");
  runtime_cmd->add_option("--node-socket", runtime_options.node_socket,
                          "the node daemon's socket (default /var/run/agentry/nodeagent.sock)");
  runtime_cmd->add_option("--model", runtime_options.model,
                          "the model's name on the node daemon (default: spec.model.name)");
  runtime_cmd->add_option("--max-tokens", runtime_options.max_tokens,
                          "most tokens of one reply (default 512)");
  runtime_cmd->add_option("--secrets-dir", runtime_options.secrets_dir,
                          "where HTTP tools read header Secrets, as DIR/SECRET/KEY (default "
                          "/var/run/agentry/secrets)");
  runtime_cmd->add_option("--service-account-token", runtime_options.service_account_token_file,
                          "the projected token HTTP tools with serviceAccountToken send");
  runtime_cmd->add_option("--auth", runtime_options.auth,
                          "who may call: none (default; everyone, as an administrator), "
                          "tokens-file or token-review (Kubernetes TokenReview)");
  runtime_cmd->add_option("--tokens-file", runtime_options.tokens_file,
                          "--auth tokens-file: lines of TOKEN,NAME[,GROUP;GROUP...]");
  runtime_cmd->add_option("--api-server", runtime_options.api_server,
                          "--auth token-review: the API server (https://kubernetes.default.svc)");
  runtime_cmd->add_option("--api-ca", runtime_options.api_ca,
                          "the API server's CA bundle (default: ca.crt beside "
                          "--service-account-token)");
  runtime_cmd->add_option("--report-status-as", runtime_options.report_status_as,
                          "report usage and budget in the ManagedAgent's status.runtimes as "
                          "this pod (default: no report)");
  runtime_cmd->add_option("--admin-group", runtime_options.admin_group,
                          "members see every session and the audit log (agentry:admins)");
  runtime_cmd->add_option("--grace-period", runtime_options.grace_seconds,
                          "seconds running turns get after SIGTERM (default 10)");

  cli::StateOptions state_options;
  CLI::App* state = app.add_subcommand(
      "state",
      "Run the state sidecar: the agent's transcripts, memory, usage, hash-chained audit log "
      "and KV snapshots in SQLite on its volume, gRPC (agentry.state.v1) on a unix socket, "
      "/metrics over HTTP. Every acknowledged write is durable. Stops on SIGTERM.");
  state->add_option("--dir", state_options.dir,
                    "the state volume (default /var/lib/agentry/state)");
  state->add_option("--socket", state_options.socket,
                    "unix socket to serve on (default /run/agentry/state.sock)");
  state->add_option("--grace-period", state_options.grace_seconds,
                    "seconds running calls get after SIGTERM (default 2)");
  state->add_option("--metrics-port", state_options.metrics_port,
                    "port of /metrics (default 9465; 0: a free port, logged)");
  state->add_flag("!--no-metrics", state_options.metrics, "serve no /metrics");
  state->add_option("--metrics-host", state_options.metrics_host,
                    "address /metrics listens on (default 127.0.0.1)");

  cli::NodeagentOptions node_options;
  CLI::App* nodeagent = app.add_subcommand(
      "nodeagent",
      "Run the node daemon: sessions pinned to this node's devices, KV kept hot between turns, "
      "gRPC (agentry.node.v1) on a unix socket, /metrics over HTTP. Stops on SIGTERM after "
      "draining.");
  nodeagent->add_option("--socket", node_options.socket,
                        "unix socket to serve on (default /var/run/agentry/nodeagent.sock)");
  nodeagent
      ->add_option("--model", node_options.models,
                   "NAME=PATH[,template=FORMAT]: a GGUF model to serve (repeatable; FORMAT "
                   "overrides its chat template: chatml, llama3, ...)")
      ->required();
  nodeagent->add_option("--context", node_options.context,
                        "context length of each session (default: the model's)");
  nodeagent->add_option("--kv-memory-mib", node_options.kv_memory_mib,
                        "KV cache budget per device in MiB (1024); idle sessions past it are "
                        "evicted and restored on their next turn");
  nodeagent->add_option("--spill-dir", node_options.spill_dir,
                        "where evicted sessions' KV goes (default: kept in memory)");
  nodeagent->add_option("-t,--threads", node_options.threads, "threads (default: all cores)");
  nodeagent->add_option("--prefill-chunk", node_options.prefill_chunk,
                        "prompt positions per prefill chunk (128)");
  nodeagent->add_option("--cache-type", node_options.cache_type, "KV cache type: f16 or q8_0");
  nodeagent->add_option("--grace-period", node_options.grace_seconds,
                        "seconds running generations get to finish after SIGTERM (30)");
  nodeagent->add_option("--metrics-port", node_options.metrics_port,
                        "port of /metrics, /healthz and /readyz (9464; 0: a free one, logged)");
  nodeagent->add_flag("!--no-metrics", node_options.metrics, "serve no /metrics");
  nodeagent->add_option("--metrics-host", node_options.metrics_host,
                        "address /metrics listens on (127.0.0.1)");
  nodeagent->add_option("--dev-root", node_options.dev_root, "where /dev is (default /dev)");
  nodeagent->add_option("--proc-root", node_options.proc_root, "where /proc is (default /proc)");
  nodeagent->add_option("--sys-root", node_options.sys_root, "where /sys is (default /sys)");

  if (argc == 1) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  cli::RunOptions run_options;
  CLI::App* run = app.add_subcommand("run", "Generate text from a GGUF model, streaming tokens.");
  run->add_option("-m,--model", run_options.model, "GGUF model file")->required();
  run->add_option("-p,--prompt", run_options.prompt, "prompt text")->required();
  run->add_option("-n,--n-predict", run_options.n_predict, "tokens to generate (default 64)");
  run->add_option("-t,--threads", run_options.threads, "threads (default: all cores)");
  run->add_option("-c,--ctx-size", run_options.ctx, "context length (default 2048)");
  run->add_flag("--chat", run_options.chat, "wrap the prompt in the model's chat template");
  run->add_option("--chat-template", run_options.chat_template,
                  "with --chat: use this format instead of the model's (chatml, llama3, llama2, "
                  "llama2-sys, llama2-sys-bos, llama2-sys-strip, zephyr)");
  run->add_option("--system", run_options.system, "with --chat: a system message");
  run->add_option("--cache-type", run_options.cache_type, "KV cache type: f16 or q8_0 (f16)");
  run->add_option("--temp", run_options.sampler.temperature, "temperature; 0 is greedy (0.8)");
  run->add_option("--top-k", run_options.sampler.top_k, "top-k, 0 off (40)");
  run->add_option("--top-p", run_options.sampler.top_p, "top-p, 1 off (0.95)");
  run->add_option("--min-p", run_options.sampler.min_p, "min-p, 0 off (0.05)");
  run->add_option("--repeat-penalty", run_options.sampler.repeat_penalty, "1 off (1.0)");
  run->add_option("--frequency-penalty", run_options.sampler.frequency_penalty, "(0)");
  run->add_option("--presence-penalty", run_options.sampler.presence_penalty, "(0)");
  run->add_option("--seed", run_options.sampler.seed, "random seed (0)");

  cli::BenchOptions bench_options;
  CLI::App* bench = app.add_subcommand(
      "bench", "Prefill and decode speed of a GGUF model, measured like llama-bench.");
  bench->add_option("-m,--model", bench_options.model, "GGUF model file")->required();
  bench->add_option("-t,--threads", bench_options.threads, "threads (default: all cores)");
  bench->add_option("-p,--n-prompt", bench_options.n_prompt, "prompt tokens (512)");
  bench->add_option("-n,--n-gen", bench_options.n_gen, "generated tokens (128)");
  bench->add_option("-r,--repetitions", bench_options.repetitions, "repetitions (3)");
  bench->add_option("--cache-type", bench_options.cache_type, "KV cache type: f16 or q8_0 (f16)");

  cli::TestModelOptions test_model_options;
  CLI::App* test_model = app.add_subcommand(
      "make-test-model", "Write a deterministic random-weight GGUF model (tests, benchmarks).");
  test_model->add_option("-o,--output", test_model_options.output, "GGUF file to write")
      ->required();
  test_model->add_option("--vocab", test_model_options.vocab,
                         "GGUF whose tokenizer to copy (default: a small synthetic one)");
  test_model->add_option("--arch", test_model_options.spec.arch, "llama or qwen2 (llama)");
  test_model->add_option("--dim", test_model_options.spec.dim, "embedding size (64)");
  test_model->add_option("--layers", test_model_options.spec.layers, "blocks (2)");
  test_model->add_option("--heads", test_model_options.spec.heads, "attention heads (4)");
  test_model->add_option("--kv-heads", test_model_options.spec.kv_heads, "KV heads (2)");
  test_model->add_option("--ff", test_model_options.spec.ff, "feed-forward size (8/3 dim)");
  test_model->add_option("--type", test_model_options.type,
                         "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1 (f32)");
  test_model->add_option("--seed", test_model_options.spec.seed, "seed (0)");
  test_model->add_flag("--tied", test_model_options.spec.tied, "reuse the embeddings as output");
  test_model->add_option("--chat-template", test_model_options.spec.chat_template,
                         "tokenizer.chat_template to write (e.g. chatml; default none)");

  agentry::train::TrainOptions train_options;
  train_options.out_dir = "agent-model";
  CLI::App* train = app.add_subcommand(
      "train", "Train the project's small agent model on its synthetic triage conversations.");
  train->add_option("-o,--out", train_options.out_dir,
                    "output directory: checkpoint, model-f32.gguf, model-q8_0.gguf, loss plot "
                    "(agent-model); an existing checkpoint there is resumed");
  train->add_option("--steps", train_options.steps, "optimizer steps (1500)");
  train->add_option("--batch-tokens", train_options.batch_tokens, "tokens per step (4096)");
  train->add_option("--lr", train_options.optimizer.lr, "peak learning rate (3e-3)");
  train->add_option("--warmup", train_options.optimizer.warmup_steps, "warm-up steps (100)");
  train->add_option("--weight-decay", train_options.optimizer.weight_decay, "AdamW decay (0.1)");
  train->add_option("--clip", train_options.optimizer.clip_norm, "gradient norm clip (1.0)");
  train->add_option("--seed", train_options.seed, "seed of weights and corpus (1)");
  train->add_option("--vocab", train_options.vocab_size, "tokenizer size, <= 4096 (1024)");
  train->add_option("--corpus-size", train_options.corpus_size,
                    "distinct training conversations (1000000)");
  train->add_option("--dim", train_options.model.dim, "embedding size (128)");
  train->add_option("--layers", train_options.model.layers, "blocks (4)");
  train->add_option("--heads", train_options.model.heads, "attention heads (4)");
  train->add_option("--kv-heads", train_options.model.kv_heads, "KV heads (2)");
  train->add_option("--ff", train_options.model.ff, "feed-forward size (352)");
  train->add_option("--ctx", train_options.model.ctx, "context length (1024)");
  train->add_option("-t,--threads", train_options.threads, "threads (default: all cores)");
  train->add_option("--checkpoint-every", train_options.checkpoint_every, "steps (100)");
  train->add_option("--eval-every", train_options.eval_every, "steps (100)");

  cli::EvalAgentOptions eval_options;
  CLI::App* eval_agent =
      app.add_subcommand("eval-agent",
                         "Measure a trained agent model on held-out conversations (tool choice, "
                         "arguments, key facts, recall).");
  eval_agent->add_option("-m,--model", eval_options.model, "GGUF model file")->required();
  eval_agent->add_option("-n,--conversations", eval_options.conversations,
                         "held-out conversations (200)");
  eval_agent->add_option("-t,--threads", eval_options.threads, "threads (default: all cores)");
  eval_agent->add_option("--seed", eval_options.seed, "corpus seed the model was trained with (1)");
  eval_agent->add_option("--json", eval_options.json, "also write the figures as JSON here");
  eval_agent->add_flag("-v,--verbose", eval_options.verbose, "print every case");

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
  if (*devices) return cli::RunDevices(devices_options);
  if (*nodeagent) return cli::RunNodeagent(node_options);
  if (*state) return cli::RunState(state_options);
  if (*runtime_cmd) return cli::RunRuntime(runtime_options);
  if (*chat) return cli::RunChat(chat_options);
  if (*audit) return cli::RunAudit(audit_options);
  if (*approve) return cli::RunApprove(approve_options);
  if (*up) return cli::RunUp(up_options);
  if (*run) return cli::RunGenerate(run_options);
  if (*bench) return cli::RunBench(bench_options);
  if (*test_model) return cli::RunMakeTestModel(test_model_options);
  if (*train) return cli::RunTrain(train_options);
  if (*eval_agent) return cli::RunEvalAgent(eval_options);
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
