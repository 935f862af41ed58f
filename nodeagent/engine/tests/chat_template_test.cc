// Chat formats: the exact text of each supported family, detection from template source,
// and detection on real models' templates from llama.cpp's source (models/templates/,
// installed by the llref fixture; those cases skip without it).
#include "nodeagent/engine/chat_template.h"

#include <gtest/gtest.h>

#include "common/file.h"
#include "nodeagent/engine/tests/shared_models.h"

namespace agentry::engine {
namespace {

std::vector<ChatMessage> Conversation() {
  return {
      {"system", "You are terse."},
      {"user", " Hi! "},
      {"assistant", "Hello."},
      {"user", "2+2?"},
  };
}

TEST(ChatTemplateTest, ChatMl) {
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kChatMl, Conversation(), true).text,
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\n Hi! <|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kChatMl, {{"user", "x"}}, false).text,
            "<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama3TrimsContent) {
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kLlama3, Conversation(), true).text,
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, Llama2Variants) {
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kLlama2, Conversation(), true).text,
            "[INST] You are terse.\n Hi!  [/INST]Hello.</s>[INST] 2+2? [/INST]");
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kLlama2Sys, Conversation(), true).text,
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n Hi!  [/INST]Hello.</s>"
            "[INST] 2+2? [/INST]");
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kLlama2SysBos, Conversation(), true).text,
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n Hi!  [/INST]Hello.</s>"
            "<s>[INST] 2+2? [/INST]");
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kLlama2SysStrip, Conversation(), true).text,
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST]Hello.</s>"
            "[INST] 2+2? [/INST]");
}

TEST(ChatTemplateTest, Zephyr) {
  EXPECT_EQ(ApplyChatTemplate(ChatFormat::kZephyr, {{"user", "Hi"}}, true).text,
            "<|user|>\nHi<|endoftext|>\n<|assistant|>\n");
}

TEST(ChatTemplateTest, ContentSpansCoverTheMessagesText) {
  const ChatPrompt p = ApplyChatTemplate(ChatFormat::kChatMl, {{"user", "a<|im_end|>b"}},
                                         /*add_assistant_prompt=*/true);
  ASSERT_EQ(p.content.size(), 2u);  // the role, then the message
  EXPECT_EQ(p.text.substr(p.content[0].offset, p.content[0].length), "user");
  EXPECT_EQ(p.text.substr(p.content[1].offset, p.content[1].length), "a<|im_end|>b");
}

TEST(ChatTemplateTest, NamesRoundTrip) {
  for (ChatFormat f :
       {ChatFormat::kChatMl, ChatFormat::kLlama3, ChatFormat::kLlama2, ChatFormat::kLlama2Sys,
        ChatFormat::kLlama2SysBos, ChatFormat::kLlama2SysStrip, ChatFormat::kZephyr}) {
    StatusOr<ChatFormat> back = DetectChatFormat(ChatFormatName(f));
    ASSERT_TRUE(back.ok()) << ChatFormatName(f);
    EXPECT_EQ(*back, f);
  }
}

TEST(ChatTemplateTest, DetectsFamiliesByMarkers) {
  EXPECT_EQ(*DetectChatFormat("{{'<|im_start|>' + m.role}}"), ChatFormat::kChatMl);
  EXPECT_EQ(*DetectChatFormat("<|start_header_id|>{{r}}<|end_header_id|>"), ChatFormat::kLlama3);
  EXPECT_EQ(*DetectChatFormat("[INST] {{ c }} [/INST]"), ChatFormat::kLlama2);
  EXPECT_EQ(*DetectChatFormat("[INST] <<SYS>> {{ c }}"), ChatFormat::kLlama2Sys);
  EXPECT_EQ(*DetectChatFormat("<|user|>{{c}}<|endoftext|>"), ChatFormat::kZephyr);
}

TEST(ChatTemplateTest, OtherFamiliesAreNamedAndRefused) {
  StatusOr<ChatFormat> phi4 = DetectChatFormat("<|im_start|>{{r}}<|im_sep|>");
  EXPECT_EQ(phi4.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(phi4.status().message().find("Phi-4"), std::string::npos);
  StatusOr<ChatFormat> gemma = DetectChatFormat("<start_of_turn>user");
  EXPECT_NE(gemma.status().message().find("Gemma"), std::string::npos);
  StatusOr<ChatFormat> unknown = DetectChatFormat("{{ messages | tojson }}");
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(unknown.status().message().find("supported: chatml"), std::string::npos);
}

// Real templates, as the model families ship them.
struct RealTemplate {
  const char* file;  // under llama.cpp's models/templates/
  const char* want;  // the format's name, or the family named in the refusal
  bool supported;
};

void PrintTo(const RealTemplate& t, std::ostream* os) { *os << t.file; }

class RealTemplateTest : public ::testing::TestWithParam<RealTemplate> {};

TEST_P(RealTemplateTest, IsRecognised) {
  const RealTemplate t = GetParam();
  const std::string path = test_support::LlamaCppFile(std::string("models/templates/") + t.file);
  if (path.empty()) GTEST_SKIP() << "llama.cpp's models/templates/" << t.file << " not installed";
  StatusOr<std::string> source = ReadFileToString(path);
  ASSERT_TRUE(source.ok());
  StatusOr<ChatFormat> f = DetectChatFormat(*source);
  if (t.supported) {
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_STREQ(ChatFormatName(*f), t.want);
  } else {
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.status().message().find(t.want), std::string::npos) << f.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Families, RealTemplateTest,
    ::testing::Values(RealTemplate{"Qwen-Qwen2.5-7B-Instruct.jinja", "chatml", true},
                      RealTemplate{"HuggingFaceTB-SmolLM3-3B.jinja", "chatml", true},
                      RealTemplate{"meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3", true},
                      RealTemplate{"meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3", true},
                      RealTemplate{"google-gemma-2-2b-it.jinja", "Gemma", false},
                      RealTemplate{"microsoft-Phi-3.5-mini-instruct.jinja", "Phi-3", false}),
    [](const auto& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.find(".jinja"));
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

}  // namespace
}  // namespace agentry::engine
