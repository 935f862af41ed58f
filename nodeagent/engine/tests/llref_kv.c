/* llref-kv -m MODEL --tokens a,b,c --dump FILE [--cache-type f16|q8_0] [-t THREADS]
 *
 * Teacher-forced logits from llama.cpp with a chosen KV cache type: every prompt position's
 * logits as raw float32 [n_pos][n_vocab], the whole prompt in one llama_decode, flash
 * attention on (llama.cpp quantizes the V cache only with it). The llref runner of
 * ../shared/tools/llref cannot set the cache type; this is the Q8_0-cache parity tests'
 * reference. Runs on node-llama-cpp's prebuilt libllama and picks its CPU backend as llref
 * does (the plug-in directory beside libllama, or --backend-dir). scripts/llref-install
 * compiles it beside llref, against the bundle's llama.h. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"

static int usage(void) {
  fprintf(stderr,
          "usage: llref-kv -m MODEL --tokens a,b,c --dump FILE [--cache-type f16|q8_0] "
          "[-t THREADS] [--backend-dir DIR]\n");
  return 2;
}

/* Comma-separated token ids into a new array; -1 on a malformed list. */
static int parse_tokens(const char* list, llama_token** out) {
  int n = 1;
  for (const char* p = list; *p; ++p) n += *p == ',';
  llama_token* toks = malloc(sizeof(llama_token) * (size_t)n);
  const char* p = list;
  for (int i = 0; i < n; ++i) {
    char* end = NULL;
    const long v = strtol(p, &end, 10);
    if (end == p || (*end != ',' && *end != '\0') || v < 0) {
      free(toks);
      return -1;
    }
    toks[i] = (llama_token)v;
    p = *end == ',' ? end + 1 : end;
  }
  *out = toks;
  return n;
}

int main(int argc, char** argv) {
  const char* model_path = NULL;
  const char* tokens_arg = NULL;
  const char* dump_path = NULL;
  const char* backend_dir = NULL;
  enum ggml_type cache_type = GGML_TYPE_F16;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) return usage();
    if (!strcmp(a, "-m")) model_path = v;
    else if (!strcmp(a, "--tokens")) tokens_arg = v;
    else if (!strcmp(a, "--dump")) dump_path = v;
    else if (!strcmp(a, "--backend-dir")) backend_dir = v;
    else if (!strcmp(a, "-t")) threads = atoi(v);
    else if (!strcmp(a, "--cache-type")) {
      if (!strcmp(v, "f16")) cache_type = GGML_TYPE_F16;
      else if (!strcmp(v, "q8_0")) cache_type = GGML_TYPE_Q8_0;
      else return usage();
    } else {
      return usage();
    }
    ++i;
  }
  if (model_path == NULL || tokens_arg == NULL || dump_path == NULL || threads <= 0) return usage();
  llama_token* toks = NULL;
  const int n = parse_tokens(tokens_arg, &toks);
  if (n <= 0) {
    fprintf(stderr, "llref-kv: bad --tokens\n");
    return 2;
  }

  char dir[4096];
  if (backend_dir != NULL) {
    snprintf(dir, sizeof(dir), "%s", backend_dir);
  } else {
    Dl_info info;
    if (!dladdr((void*)&llama_backend_init, &info) || info.dli_fname == NULL) {
      fprintf(stderr, "llref-kv: cannot find libllama's directory\n");
      return 1;
    }
    snprintf(dir, sizeof(dir), "%s", info.dli_fname);
    char* slash = strrchr(dir, '/');
    if (slash != NULL) *slash = '\0';
  }
  ggml_backend_load_all_from_path(dir);
  llama_backend_init();

  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  struct llama_model* model = llama_model_load_from_file(model_path, mp);
  if (model == NULL) {
    fprintf(stderr, "llref-kv: cannot load %s\n", model_path);
    return 1;
  }
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)n + 16;
  cp.n_batch = (uint32_t)n;
  cp.n_ubatch = (uint32_t)n;
  cp.n_seq_max = 1;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.type_k = cache_type;
  cp.type_v = cache_type;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
  struct llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == NULL) {
    fprintf(stderr, "llref-kv: cannot create a context\n");
    return 1;
  }

  struct llama_batch batch = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; ++i) {
    batch.token[i] = toks[i];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = n;
  if (llama_decode(ctx, batch) != 0) {
    fprintf(stderr, "llref-kv: llama_decode failed\n");
    return 1;
  }
  FILE* out = fopen(dump_path, "wb");
  if (out == NULL) {
    fprintf(stderr, "llref-kv: cannot write %s\n", dump_path);
    return 1;
  }
  for (int i = 0; i < n; ++i) {
    if (fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)n_vocab, out) !=
        (size_t)n_vocab) {
      fprintf(stderr, "llref-kv: short write to %s\n", dump_path);
      return 1;
    }
  }
  if (fclose(out) != 0) return 1;
  printf("llref-kv: %d positions x %d logits, cache %s, to %s\n", n, n_vocab,
         cache_type == GGML_TYPE_Q8_0 ? "q8_0" : "f16", dump_path);

  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  free(toks);
  return 0;
}
