/* llref-quantize [--pure] IN OUT TYPE [THREADS] — llama.cpp's own quantizer, run through
 * llama_model_quantize() in node-llama-cpp's prebuilt libllama (the function the
 * llama-quantize tool calls), so that tests and benches can make llama.cpp-quantized files
 * without building llama.cpp from source. The arguments mirror llama-quantize's.
 * scripts/llref-install compiles it beside llref, against the bundle's llama.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

struct type_name {
  const char* name;
  enum llama_ftype ftype;
};

static const struct type_name kTypes[] = {
    {"F32", LLAMA_FTYPE_ALL_F32},         {"F16", LLAMA_FTYPE_MOSTLY_F16},
    {"BF16", LLAMA_FTYPE_MOSTLY_BF16},    {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},    {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},
    {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},    {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},
    {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
    {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M}, {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},
};

static int usage(void) {
  fprintf(stderr, "usage: llref-quantize [--pure] IN OUT TYPE [THREADS]\nTYPE:");
  for (size_t i = 0; i < sizeof(kTypes) / sizeof(kTypes[0]); ++i) {
    fprintf(stderr, " %s", kTypes[i].name);
  }
  fprintf(stderr, "\n");
  return 2;
}

int main(int argc, char** argv) {
  int arg = 1;
  int pure = 0;
  if (arg < argc && strcmp(argv[arg], "--pure") == 0) {
    pure = 1;
    ++arg;
  }
  if (argc - arg < 3 || argc - arg > 4) return usage();
  const char* in = argv[arg];
  const char* out = argv[arg + 1];
  const char* type = argv[arg + 2];
  const struct type_name* chosen = NULL;
  for (size_t i = 0; i < sizeof(kTypes) / sizeof(kTypes[0]); ++i) {
    if (strcmp(type, kTypes[i].name) == 0) chosen = &kTypes[i];
  }
  if (chosen == NULL) {
    fprintf(stderr, "llref-quantize: unknown type '%s'\n", type);
    return usage();
  }
  llama_backend_init();
  struct llama_model_quantize_params params = llama_model_quantize_default_params();
  params.ftype = chosen->ftype;
  params.pure = pure != 0;
  params.nthread = argc - arg == 4 ? atoi(argv[arg + 3]) : 1;
  const uint32_t failed = llama_model_quantize(in, out, &params);
  llama_backend_free();
  if (failed != 0) {
    fprintf(stderr, "llref-quantize: llama_model_quantize(%s -> %s, %s) failed\n", in, out, type);
    return 1;
  }
  return 0;
}
