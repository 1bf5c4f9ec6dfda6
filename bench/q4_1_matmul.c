/* y = x @ Wᵀ for a Q4_1 weight (4-bit q in groups of 32 inputs, w = scale × q + minimum): bench_int4_matmul.py's
 * `ours` candidate, a hand-written AVX512-BF16 kernel measured against torch's `_weight_int4pack_mm_for_cpu`.
 * The engine does not use it: on the default model's shapes, from memory, it reads about what torch's kernel reads
 * (10-12 against 10 GB/s at one row and one thread, the same ~18 at two; bench/RESULTS.md), not worth a C kernel
 * to build at run time and maintain.
 *
 *   y[m, n] = Σ_g scale[n, g] · Σ_j q[n, g, j] · x[m, 32g + j]  +  Σ_g minimum[g, n] · Σ_j x[m, 32g + j]
 *
 * Per group, the nibbles become the bf16 numbers 128 + q by plain logic (0x4300 is 128.0 and its last mantissa bit
 * is worth 1), AVX512-BF16's dot product multiplies them with x's own bf16 values summing in fp32 (every product
 * exact), and the sum is scaled; -128 · Σ_g scale · Σ x takes the 128 back out, and the minimums' share goes in a
 * pass of its own, vectorized over outputs. y is rounded to bf16 once, as torch's kernel does. What sets its speed
 * on an AMD EPYC (Zen 4): its FP pipes, ~16 multiply-adds a cycle with bf16 or fp32 operands (one dot product and
 * one scaling FMA per 32 weights: ~18 GB/s of weights a core in cache, 12-14 GB/s from memory); torch's kernel
 * reaches ~10. Only 8-bit activations (llama.cpp's Q8_1, AVX512-VNNI) multiply faster, and they round x more
 * than bf16 does.
 *
 * Layout: packed [N, K/2] bytes per row, four groups to 64 bytes (16-bit word i holds element i of the four, one
 * nibble each, first group lowest), then a last pair of groups when their count is not a multiple of four (32
 * bytes, byte j = q[j] of the first | q[j] of the second << 4); scale [N, K/32] and minimum [K/32, N] bf16.
 * K a multiple of 64. Threads: the caller's OpenMP team (torch's libgomp, torch.set_num_threads).
 * Build: gcc -O3 -mavx512f -mavx512bw -mavx512vl -mavx512bf16 -fopenmp -shared -fPIC.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GROUP 32
#define ROWS_AT_ONCE 4 /* rows of x per pass over a weight row */
#ifndef PREFETCH_ROWS
#define PREFETCH_ROWS 8 /* weight rows ahead that are fetched while this one is computed */
#endif

static inline uint16_t float_to_bf16(float f) { /* round to nearest even, as torch's .to(torch.bfloat16) */
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40); /* NaN stays NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static inline __m512 bf16x16_to_float(const uint16_t *h, __mmask16 valid) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(valid, h)), 16));
}

static inline __mmask16 first_lanes(int64_t count) { return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1u); }

/* bf16 numbers 128 + q from 16-bit words holding q in their low 4 bits: 0x4300 is 128.0, whose last mantissa bit is
 * worth 1, so OR-ing q in gives 128 + q exactly (q < 128). No table lookup: plain logic, which has ports to spare. */
#define BF16_128 0x4300
static inline __m512bh plus_128(__m512i words) { /* (words & 0xf) | 0x4300 in one instruction */
    return (__m512bh)_mm512_ternarylogic_epi32(words, _mm512_set1_epi16(0x0f), _mm512_set1_epi16(BF16_128), 0xea);
}

/* The pair's two bf16 scales (adjacent in memory) as fp32 broadcasts: one 32-bit load, no round trip through memory. */
static inline __attribute__((always_inline)) void pair_scales(const uint16_t *scale, __m512 *s0, __m512 *s1) {
    uint32_t both;
    memcpy(&both, scale, sizeof both);
    __m512i v = _mm512_set1_epi32((int)both);
    *s0 = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *s1 = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
}

static inline __attribute__((always_inline)) __m512 scaled_dot(__m512 acc, __m512bh q, const uint16_t *x, __m512 scale) {
    return _mm512_fmadd_ps(_mm512_dpbf16_ps(_mm512_setzero_ps(), q, (__m512bh)_mm512_loadu_si512(x)), scale, acc);
}

/* Σ_g scale_g · ((128 + q_g) · x_g) of one weight row against `rows` rows of x (a constant once inlined); the caller
 * adds -128 · Σ_g scale_g · Σ x_g. Groups come four at a time (64 bytes: 16-bit word i holds element i of the four
 * groups, one nibble each), and a last pair of groups when their count is not a multiple of four (32 bytes, byte j
 * = q[j] of the first | q[j] of the second << 4). Each row keeps four accumulators: an FMA waits ~4 cycles for the
 * one before it on the same accumulator. */
static inline __attribute__((always_inline)) void dot_rows(const uint8_t *w, const uint16_t *scale, int64_t groups,
                                                           const uint16_t *x, int64_t k, int rows, __m512 *out,
                                                           int64_t out_stride) {
    __m512 acc[ROWS_AT_ONCE][4];
    for (int r = 0; r < ROWS_AT_ONCE; r++) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm512_setzero_ps();
    int64_t g = 0;
    for (; g + 4 <= groups; g += 4) {
        __m512i words = _mm512_loadu_si512(w + 16 * g);
        __m512bh q0 = plus_128(words), q1 = plus_128(_mm512_srli_epi16(words, 4)), q2 = plus_128(_mm512_srli_epi16(words, 8)),
                 q3 = (__m512bh)_mm512_or_si512(_mm512_srli_epi16(words, 12), _mm512_set1_epi16(BF16_128));
        __m512 s0, s1, s2, s3;
        pair_scales(scale + g, &s0, &s1);
        pair_scales(scale + g + 2, &s2, &s3);
        for (int r = 0; r < rows; r++) {
            const uint16_t *xg = x + r * k + GROUP * g;
            acc[r][0] = scaled_dot(acc[r][0], q0, xg, s0);
            acc[r][1] = scaled_dot(acc[r][1], q1, xg + GROUP, s1);
            acc[r][2] = scaled_dot(acc[r][2], q2, xg + 2 * GROUP, s2);
            acc[r][3] = scaled_dot(acc[r][3], q3, xg + 3 * GROUP, s3);
        }
    }
    if (g < groups) { /* the last pair */
        __m512i words = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(w + 16 * g)));
        __m512bh q0 = plus_128(words), q1 = plus_128(_mm512_srli_epi16(words, 4));
        __m512 s0, s1;
        pair_scales(scale + g, &s0, &s1);
        for (int r = 0; r < rows; r++) {
            const uint16_t *xg = x + r * k + GROUP * g;
            acc[r][0] = scaled_dot(acc[r][0], q0, xg, s0);
            acc[r][1] = scaled_dot(acc[r][1], q1, xg + GROUP, s1);
        }
    }
    for (int r = 0; r < rows; r++)
        out[r * out_stride] = _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3]));
}

/* [Σ lanes of v[0], ..., Σ lanes of v[15]]: sixteen horizontal sums in 45 instructions, not 16 × 8 and 16 scalar stores. */
static inline __m512 sum_lanes16(const __m512 *v) {
    __m512 t[8], u[4], w[2];
    for (int i = 0; i < 8; i++) /* per 128-bit block: [a0+a2, b0+b2, a1+a3, b1+b3] */
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) { /* per block: [Σ a, Σ b, Σ c, Σ d] over the block */
        __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    for (int i = 0; i < 2; i++) /* blocks: rows 0-3 (blocks 0+1), 0-3 (2+3), 4-7 (0+1), 4-7 (2+3) of the pair */
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88), _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xdd));
}

/* x [m, k] bf16, packed [n, k/2], scale [n, k/32] and minimum [k/32, n] bf16 → y [m, n] bf16. k is a multiple of 64. */
void q4_1_matmul(const uint16_t *x, int64_t m, int64_t k, const uint8_t *packed, const uint16_t *scale,
                 const uint16_t *minimum, int64_t n, uint16_t *y) {
    const int64_t groups = k / GROUP;
    float *xsum = malloc(sizeof(float) * (size_t)(2 * m * groups + m * n)); /* Σ x per row and group */
    if (!xsum) abort();
    float *minus_128_xsum = xsum + m * groups, *shift = minus_128_xsum + m * groups; /* shift [m, n]: Σ_g minimum · Σ x */
    for (int64_t i = 0; i < m * groups; i++)
    {
        xsum[i] = _mm512_reduce_add_ps(_mm512_add_ps(bf16x16_to_float(x + i * GROUP, 0xffff), bf16x16_to_float(x + i * GROUP + 16, 0xffff)));
        minus_128_xsum[i] = -128.f * xsum[i];
    }
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t o = 0; o < n; o += 16) { /* the minimums' share, 16 outputs at a time */
            const __mmask16 valid = first_lanes(n - o);
            for (int64_t r = 0; r < m; r++) {
                __m512 acc = _mm512_setzero_ps();
                for (int64_t g = 0; g < groups; g++)
                    acc = _mm512_fmadd_ps(bf16x16_to_float(minimum + g * n + o, valid), _mm512_set1_ps(xsum[r * groups + g]), acc);
                _mm512_mask_storeu_ps(shift + r * n + o, valid, acc);
            }
        }
#pragma omp for schedule(static)
        for (int64_t o0 = 0; o0 < n; o0 += 16) { /* 16 outputs at a time: their sums reduced together, stored as one vector */
            __m512 acc[ROWS_AT_ONCE][16];
            const int64_t outputs = n - o0 < 16 ? n - o0 : 16;
            for (int64_t r0 = 0; r0 < m; r0 += ROWS_AT_ONCE) {
                const int rows = m - r0 >= ROWS_AT_ONCE ? ROWS_AT_ONCE : (int)(m - r0);
                const uint16_t *xr = x + r0 * k;
                for (int64_t i = 0; i < 16; i++) {
                    if (i >= outputs) {
                        for (int r = 0; r < rows; r++) acc[r][i] = _mm512_setzero_ps();
                        continue;
                    }
                    const uint8_t *w = packed + (o0 + i) * (k / 2);
                    const uint16_t *s = scale + (o0 + i) * groups;
                    if (r0 == 0 && o0 + i + PREFETCH_ROWS < n) { /* ask for a later row now: memory, not the arithmetic, then sets the pace */
                        const char *ahead = (const char *)(w + PREFETCH_ROWS * (k / 2));
                        for (int64_t line = 0; line < k / 2; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
                        _mm_prefetch((const char *)(s + PREFETCH_ROWS * groups), _MM_HINT_T0);
                    }
                    switch (rows) { /* constant row counts: accumulators in registers */
                        case 1: dot_rows(w, s, groups, xr, k, 1, &acc[0][i], 16); break;
                        case 2: dot_rows(w, s, groups, xr, k, 2, &acc[0][i], 16); break;
                        case 3: dot_rows(w, s, groups, xr, k, 3, &acc[0][i], 16); break;
                        default: dot_rows(w, s, groups, xr, k, 4, &acc[0][i], 16); break;
                    }
                }
                for (int64_t i = 0; i < outputs; i++) /* the 128 the dot products added to every q: -128 · Σ_g scale_g · Σ x_g */
                    for (int64_t g = 0; g < groups; g += 16) {
                        const __mmask16 some = first_lanes(groups - g);
                        const __m512 s = bf16x16_to_float(scale + (o0 + i) * groups + g, some);
                        for (int r = 0; r < rows; r++)
                            acc[r][i] = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(some, minus_128_xsum + (r0 + r) * groups + g), acc[r][i]);
                    }
                for (int r = 0; r < rows; r++) {
                    const __mmask16 valid = first_lanes(outputs);
                    __m512 sums = _mm512_add_ps(sum_lanes16(acc[r]), _mm512_maskz_loadu_ps(valid, shift + (r0 + r) * n + o0));
                    _mm256_mask_storeu_epi16(y + (r0 + r) * n + o0, valid, (__m256i)_mm512_cvtneps_pbh(sums)); /* nearest even */
                }
            }
        }
    }
    free(xsum);
}
