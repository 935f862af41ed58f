// A trained vocabulary in llama.cpp: a tiny random model carrying it (engine::BuildTestModel)
// is tokenized by llama.cpp's own tokenizer (node-llama-cpp 3.22.1's libllama, driven by
// ../shared/tools/llref, installed by scripts/llref-install as a ctest fixture) and by the
// engine, and the ids must be equal: English, digits, JSON, text in scripts and emoji the
// corpus never had (byte tokens), whitespace runs, and invalid UTF-8. llref tokenizes its -p
// text with parse_special = false, so special token text is compared as plain text here;
// the engine test (bpe_trainer_test.cc) covers special tokens parsed as control tokens.
// Without llref the tests skip and say so.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "train/bpe/bpe_trainer.h"
#include "train/bpe/tests/corpus_gen.h"
#include <gtest/gtest.h>

#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/test_model.h"
#include "nodeagent/engine/tokenizer.h"

extern char** environ;

namespace agentry::train {
namespace {

// Where scripts/llref-install puts the reference runner: $AGENTRY_CACHE/llref/llref, by
// default ~/.cache/agentry/llref/llref; "" when it is not installed.
std::string LlrefPath() {
  const char* cache = std::getenv("AGENTRY_CACHE");
  const char* home = std::getenv("HOME");
  const std::string path =
      (cache != nullptr ? std::string(cache)
                        : std::string(home != nullptr ? home : "/tmp") + "/.cache/agentry") +
      "/llref/llref";
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

// Runs `args` without a shell (so the text reaches llama.cpp byte for byte, trailing newlines
// included); returns the exit status and sets *output to stdout and stderr together.
int RunCommand(const std::vector<std::string>& args, std::string* output) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  output->clear();
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) output->append(buf, n);
  close(fds[0]);
  if (spawned != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The ids llref prints on its "prompt_tokens (N): a b c" line.
std::vector<int32_t> PromptTokens(const std::string& output) {
  std::vector<int32_t> ids;
  const size_t at = output.find("prompt_tokens (");
  if (at == std::string::npos) return ids;
  const size_t colon = output.find(':', at);
  std::istringstream in(output.substr(colon + 1, output.find('\n', at) - colon - 1));
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

class LlamaCppTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    llref_ = LlrefPath();
    if (llref_.empty()) {
      GTEST_SKIP() << "llama.cpp's reference runner is not installed (~/.cache/agentry/llref/"
                      "llref; scripts/llref-install installs it)";
    }
    BpeOptions options;
    options.special_tokens = test_support::ChatSpecialTokens();
    options.vocab_size = 1024;
    StatusOr<BpeVocab> vocab = TrainBpe(test_support::GenerateCorpus(200000, 11), options);
    ASSERT_TRUE(vocab.ok()) << vocab.status().message();
    ASSERT_EQ(vocab->tokens.size(), 1024u);
    engine::GgufWriter w;
    WriteTokenizerMetadata(*vocab, "", &w);
    vocab_bytes_ = w.Serialize();
    StatusOr<std::unique_ptr<engine::GgufFile>> vf =
        engine::GgufFile::FromBuffer(vocab_bytes_, "vocab");
    ASSERT_TRUE(vf.ok()) << vf.status().message();
    engine::TestModelSpec spec;
    spec.arch = "qwen2";
    spec.dim = 64;
    spec.layers = 1;
    spec.vocab = vf->get();
    StatusOr<std::string> model = engine::BuildTestModel(spec);
    ASSERT_TRUE(model.ok()) << model.status().message();
    model_path_ = ::testing::TempDir() + "bpe-llama-cpp-" + std::to_string(getpid()) + ".gguf";
    ASSERT_TRUE(engine::WriteFileAtomically(model_path_, *model).ok());
    StatusOr<std::unique_ptr<engine::GgufFile>> mf = engine::GgufFile::Open(model_path_);
    ASSERT_TRUE(mf.ok()) << mf.status().message();
    model_file_ = std::move(mf).value();
    StatusOr<engine::Tokenizer> t = engine::Tokenizer::FromGguf(*model_file_);
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::make_unique<engine::Tokenizer>(std::move(t).value());
  }
  void TearDown() override {
    if (!model_path_.empty()) unlink(model_path_.c_str());
  }

  // llama.cpp's ids for `text` (no BOS: the vocabulary says add_bos_token = false).
  std::vector<int32_t> LlamaCppIds(const std::string& text, std::string* log) {
    const int rc = RunCommand(
        {llref_, "-m", model_path_, "-t", "1", "-p", text, "-n", "0", "--pp", "0", "--tg", "0"},
        log);
    EXPECT_EQ(rc, 0) << *log;
    EXPECT_NE(log->find("prompt_tokens ("), std::string::npos) << *log;
    return PromptTokens(*log);
  }

  std::string llref_;
  std::string vocab_bytes_;
  std::string model_path_;
  std::unique_ptr<engine::GgufFile> model_file_;
  std::unique_ptr<engine::Tokenizer> tok_;
};

TEST_F(LlamaCppTokenizerTest, TokenizesLikeTheEngine) {
  const std::vector<std::string> texts = {
      "The customer opened the ticket yesterday, and the agent closed it this morning.",
      "Order 4821 shipped on 2024-03-15 for $1,299.99 (qty 12, 3.14159, 1e-9, 007).",
      "{\"name\":\"get_ticket\",\"arguments\":{\"id\":4821}}",
      "Grüße aus Köln — 日本語のテキスト",
      "русский текст, العربية",
      "emoji 🤖🚀 👩‍💻 🇩🇪.",
      "  two  spaces,   three\n\nnewlines\n\n\n\ttab \t\r\nend  \n\n",
      "<|im_start|>user\nWhat is the status of ticket 4821?<|im_end|>\n",
      "I'm sure they'll say it's DONE'S and we've 'quoted' it.",
      "invalid \xff\xfe UTF-8 \xc3 and a lone continuation \x80 byte",
      test_support::CorpusGenerator(12).Conversation(),
  };
  for (const std::string& text : texts) {
    std::string log;
    const std::vector<int32_t> ours = tok_->Encode(text, /*add_bos=*/false);
    const std::vector<int32_t> theirs = LlamaCppIds(text, &log);
    EXPECT_EQ(ours, theirs) << text;
    EXPECT_FALSE(ours.empty());
  }
}

// The value llama.cpp's verbose log prints for `field` ("BOS token" in the line
// "print_info: BOS token             = 256 '<|endoftext|>'"), or "" when it has no such line.
std::string PrintedInfo(const std::string& log, const std::string& field) {
  const size_t at = log.find("print_info: " + field + " ");
  if (at == std::string::npos) return "";
  const size_t eq = log.find("= ", at);
  return log.substr(eq + 2, log.find('\n', at) - eq - 2);
}

TEST_F(LlamaCppTokenizerTest, LoadsWithTheFilesSpecialTokensAndNoVocabularyWarnings) {
  std::string log;
  const int rc = RunCommand({llref_, "-m", model_path_, "-t", "1", "-p", "hello", "-n", "0", "--pp",
                             "0", "--tg", "0", "-v"},
                            &log);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_EQ(PrintedInfo(log, "vocab type"), "BPE");
  EXPECT_EQ(PrintedInfo(log, "n_vocab"), "1024");
  EXPECT_EQ(PrintedInfo(log, "n_merges"), "765");
  EXPECT_EQ(PrintedInfo(log, "BOS token"), "256 '<|endoftext|>'");
  EXPECT_EQ(PrintedInfo(log, "EOS token"), "258 '<|im_end|>'");
  EXPECT_EQ(PrintedInfo(log, "EOT token"), "258 '<|im_end|>'");  // found by its name
  EXPECT_EQ(PrintedInfo(log, "PAD token"), "256 '<|endoftext|>'");
  EXPECT_EQ(PrintedInfo(log, "LF token"), "10 'Ċ'");
  // The warnings llama.cpp's vocabulary loader can print (src/llama-vocab.cpp): none apply.
  for (const char* warning :
       {"missing pre-tokenizer", "GENERATION QUALITY", "control-looking token",
        "not in special_eog_ids", "bad special token", "out of vocab range", "empty token",
        "newline token", "dummy tokens", "attribute to USER_DEFINED"}) {
    EXPECT_EQ(log.find(warning), std::string::npos) << warning << "\n" << log;
  }
}

}  // namespace
}  // namespace agentry::train
