// train/export.cc — see export.h.
#include "train/export.h"

#include "kernels/cpu/quants.h"
#include "nodeagent/engine/gguf_writer.h"

namespace agentry::train {

const char kChatMlTemplate[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

StatusOr<std::string> ExportGguf(const ModelConfig& config, const std::vector<float>& params,
                                 const BpeVocab& vocab, engine::GgmlType type,
                                 const std::string& name) {
  if (type != engine::GgmlType::kF32 && type != engine::GgmlType::kQ8_0) {
    return InvalidArgumentError("export type must be F32 or Q8_0");
  }
  const ParameterLayout layout = ParameterLayout::For(config);
  if (static_cast<int64_t>(params.size()) != layout.total()) {
    return InvalidArgumentError("parameter vector has " + std::to_string(params.size()) +
                                " values, the model needs " + std::to_string(layout.total()));
  }
  if (static_cast<int64_t>(vocab.tokens.size()) != config.vocab) {
    return InvalidArgumentError("tokenizer has " + std::to_string(vocab.tokens.size()) +
                                " tokens, the model " + std::to_string(config.vocab));
  }
  engine::GgufWriter w;
  const std::string a = "llama.";
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", name);
  // general.file_type: 0 all F32, 7 mostly Q8_0 (llama.cpp's llama_ftype values).
  w.SetUint32("general.file_type", type == engine::GgmlType::kF32 ? 0 : 7);
  w.SetUint32(a + "context_length", static_cast<uint32_t>(config.ctx));
  w.SetUint32(a + "embedding_length", static_cast<uint32_t>(config.dim));
  w.SetUint32(a + "block_count", static_cast<uint32_t>(config.layers));
  w.SetUint32(a + "feed_forward_length", static_cast<uint32_t>(config.ff));
  w.SetUint32(a + "attention.head_count", static_cast<uint32_t>(config.heads));
  w.SetUint32(a + "attention.head_count_kv", static_cast<uint32_t>(config.kv_heads));
  w.SetUint32(a + "rope.dimension_count", static_cast<uint32_t>(config.head_dim()));
  w.SetFloat32(a + "rope.freq_base", config.rope_base);
  w.SetFloat32(a + "attention.layer_norm_rms_epsilon", config.rms_eps);
  w.SetUint32(a + "vocab_size", static_cast<uint32_t>(config.vocab));
  WriteTokenizerMetadata(vocab, kChatMlTemplate, &w);

  for (const TensorSlot& t : layout.tensors()) {
    const float* data = params.data() + t.offset;
    if (type == engine::GgmlType::kF32 || t.is_norm) {
      Status s = w.AddTensor(t.name, engine::GgmlType::kF32, t.dims,
                             std::string_view(reinterpret_cast<const char*>(data),
                                              static_cast<size_t>(t.size) * sizeof(float)));
      if (!s.ok()) return s;
      continue;
    }
    std::vector<kernels::block_q8_0> blocks(static_cast<size_t>(t.size / kernels::kQK8_0));
    kernels::quantize_row_q8_0_ref(data, blocks.data(), t.size);
    Status s = w.AddTensor(t.name, engine::GgmlType::kQ8_0, t.dims,
                           std::string_view(reinterpret_cast<const char*>(blocks.data()),
                                            blocks.size() * sizeof(kernels::block_q8_0)));
    if (!s.ok()) return s;
  }
  return w.Serialize();
}

}  // namespace agentry::train
