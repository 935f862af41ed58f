// kernels/cpu/immintrin_avx512.h — <immintrin.h> for the files compiled with AVX-512. GCC 12's
// AVX-512 intrinsics read _mm512_undefined_*() values and warn that they are uninitialized
// (GCC bug 105593, fixed in GCC 13). The warning points into the header, so it is silenced
// for the header's own lines only. Include it first in every AVX-512 file, before anything
// that includes <immintrin.h> itself (whose include guard would then skip this).
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop
