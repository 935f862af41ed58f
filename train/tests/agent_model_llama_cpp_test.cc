// The trained model's GGUF read by llama.cpp itself: the same tokens for the same text, and
// the same greedy continuation of an agent prompt as our engine. Runs on a small model
// trained in the test; AGENTRY_AGENT_MODEL=FILE checks a given model (bench/agent-model
// passes the real one). Skips, saying why, without llama.cpp's reference (the llref fixture).
#include <cstdlib>
#include <filesystem>

#include "train/corpus/triage_corpus.h"
#include "train/trainer.h"
#include <gtest/gtest.h>

#include "nodeagent/engine/chat_template.h"
#include "nodeagent/engine/tests/llref_runner.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::train {
namespace {

using engine::test_support::ExpectSameGreedy;
using engine::test_support::LlrefPath;
using engine::test_support::RunLlref;

std::string TrainedModel(const std::string& dir) {
  if (const char* given = std::getenv("AGENTRY_AGENT_MODEL")) return given;
  TrainOptions o;
  o.out_dir = dir;
  o.model.dim = 64;
  o.model.layers = 2;
  o.model.heads = 4;
  o.model.kv_heads = 2;
  o.model.ff = 128;
  o.vocab_size = 512;
  o.tokenizer_conversations = 300;
  o.batch_tokens = 2048;
  o.steps = 30;
  o.optimizer.warmup_steps = 5;
  StatusOr<TrainResult> r = Train(o, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->f32_path : "";
}

TEST(AgentModelLlamaCppTest, SameTokensAndSameGreedyContinuation) {
  if (LlrefPath().empty()) {
    GTEST_SKIP() << "llama.cpp's reference is not installed (scripts/llref-install)";
  }
  const std::string dir = std::filesystem::temp_directory_path() /
                          ("agentry_agent_llama_" + std::to_string(::getpid()));
  const std::string model_path = TrainedModel(dir);
  ASSERT_FALSE(model_path.empty());
  std::unique_ptr<engine::Model> model = engine::test_support::LoadModelFile(model_path);
  StatusOr<engine::Tokenizer> tok = engine::Tokenizer::FromGguf(model->file());
  ASSERT_TRUE(tok.ok());

  for (uint64_t i = 0; i < 3; ++i) {
    const Conversation conv = GenerateConversation(1, Split::kHeldOut, i);
    // llref tokenizes without special tokens, so compare a user message's text alone.
    const std::string text_file = dir + "/prompt.txt";
    std::filesystem::create_directories(dir);
    const std::string& user = conv.messages[1].content;
    std::ofstream(text_file) << user;
    const engine::test_support::Reference by_text = RunLlref(model_path, {}, text_file);
    EXPECT_EQ(by_text.prompt_tokens, tok->Encode(user, false)) << user;

    // Greedy: the prompt up to the first assistant reply, as the runtime renders it.
    const std::vector<engine::ChatMessage> history(conv.messages.begin(),
                                                   conv.messages.begin() + 2);
    const engine::ChatPrompt prompt =
        engine::ApplyChatTemplate(engine::ChatFormat::kChatMl, history, true);
    ExpectSameGreedy(model_path, tok->Encode(prompt.text, false, true, prompt.content));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace agentry::train
