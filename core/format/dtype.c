/* safetensors element types: sizes, names, and exact conversions.
 *
 * Narrowing to half and bfloat16 is done on the bits of the double, so the
 * rounding happens once (to nearest, ties to even) and there is no double
 * rounding through float.  The per-element helpers are static inline so the
 * array loops compile to straight code without a call per element. */
#include "dtype.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors is little-endian; this code assumes a little-endian host"
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "the rounding tricks below need doubles evaluated in double precision (no x87)"
#endif

typedef struct dtype_description {
    const char *name;
    size_t size;
} dtype_description;

static const dtype_description dtype_table[MS_DTYPE_COUNT] = {
    [MS_DTYPE_BOOL] = {"BOOL", 1},       [MS_DTYPE_U8] = {"U8", 1},
    [MS_DTYPE_I8] = {"I8", 1},           [MS_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
    [MS_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [MS_DTYPE_I16] = {"I16", 2},
    [MS_DTYPE_U16] = {"U16", 2},         [MS_DTYPE_F16] = {"F16", 2},
    [MS_DTYPE_BF16] = {"BF16", 2},       [MS_DTYPE_I32] = {"I32", 4},
    [MS_DTYPE_U32] = {"U32", 4},         [MS_DTYPE_F32] = {"F32", 4},
    [MS_DTYPE_F64] = {"F64", 8},         [MS_DTYPE_I64] = {"I64", 8},
    [MS_DTYPE_U64] = {"U64", 8},
};

static bool dtype_valid(ms_dtype dtype)
{
    return (int)dtype >= 0 && dtype < MS_DTYPE_COUNT;
}

size_t ms_dtype_size(ms_dtype dtype)
{
    return dtype_valid(dtype) ? dtype_table[dtype].size : 0;
}

const char *ms_dtype_name(ms_dtype dtype)
{
    return dtype_valid(dtype) ? dtype_table[dtype].name : "UNKNOWN";
}

bool ms_dtype_from_name(const char *name, ms_dtype *dtype)
{
    if (name == NULL)
        return false;
    for (int i = 0; i < MS_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *dtype = (ms_dtype)i;
            return true;
        }
    }
    return false;
}

bool ms_dtype_is_float(ms_dtype dtype)
{
    return dtype == MS_DTYPE_F16 || dtype == MS_DTYPE_BF16 ||
           dtype == MS_DTYPE_F32 || dtype == MS_DTYPE_F64;
}

static inline uint64_t double_bits(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline double double_from_bits(uint64_t bits)
{
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Narrows a double to a binary format with exponent_bits and mantissa_bits
 * (half: 5/10, bfloat16: 8/7), rounding to nearest, ties to even.
 *
 * Branch-free so array loops run at a few cycles per element:
 * - normal results: rebias the exponent, then round the mantissa away with
 *   the integer "add half minus one plus the kept LSB" trick; a carry runs
 *   into the exponent on its own, which gives the round-up-to-Inf overflow
 *   of IEEE RNE too;
 * - subnormal results: scale so one target subnormal is 1.0 (exact, a power
 *   of two) and let the FPU round to an integer by adding 2^52 (RNE in the
 *   default rounding mode, the one this program runs in);
 * - Inf stays Inf, NaN stays NaN with the top payload bits and the quiet bit.
 * subnormal_scale is 2^(bias - 1 + mantissa_bits). */
static inline uint16_t narrow_from_double(double value, int exponent_bits, int mantissa_bits,
                                          double subnormal_scale)
{
    const int bias = (1 << (exponent_bits - 1)) - 1;
    const int shift = 52 - mantissa_bits;
    const uint64_t bits = double_bits(value);
    const uint64_t magnitude = bits & ~(UINT64_C(1) << 63);
    const uint64_t sign = (bits >> 48) & 0x8000u;
    const uint64_t infinity = (uint64_t)((1u << exponent_bits) - 1) << mantissa_bits;
    const uint64_t double_infinity = UINT64_C(0x7ff) << 52;
    const uint64_t smallest_normal = (uint64_t)(1023 - bias + 1) << 52;
    const uint64_t first_overflow = (uint64_t)(1023 + bias + 1) << 52;

    uint64_t rebased = magnitude - ((uint64_t)(1023 - bias) << 52); /* wraps when unused */
    uint64_t normal = (rebased + ((UINT64_C(1) << (shift - 1)) - 1) + ((rebased >> shift) & 1))
                      >> shift;
    double scaled = fabs(value) * subnormal_scale + 0x1p52;
    uint64_t subnormal = double_bits(scaled) - double_bits(0x1p52);
    uint64_t nan = infinity | (UINT64_C(1) << (mantissa_bits - 1)) |
                   ((magnitude >> shift) & ((UINT64_C(1) << mantissa_bits) - 1));

    uint64_t result = magnitude < smallest_normal ? subnormal : normal;
    result = magnitude >= first_overflow ? infinity : result;
    result = magnitude > double_infinity ? nan : result;
    return (uint16_t)(sign | result);
}

#define HALF_SUBNORMAL_SCALE 0x1p24       /* 2^(15 - 1 + 10) */
#define BFLOAT16_SUBNORMAL_SCALE 0x1p133  /* 2^(127 - 1 + 7) */

static inline double half_to_double_inline(uint16_t bits)
{
    const uint64_t sign = (uint64_t)(bits & 0x8000u) << 48;
    const uint64_t exponent = (bits >> 10) & 0x1fu;
    const uint64_t mantissa = bits & 0x3ffu;
    /* Normal: rebias the exponent field.  Subnormal: mantissa * 2^-24, exact
     * through int -> double.  Selected without branches. */
    uint64_t normal = (((exponent + 1023 - 15) << 52) | (mantissa << 42));
    uint64_t special = (UINT64_C(0x7ff) << 52) | (mantissa << 42);
    uint64_t subnormal = double_bits((double)(int32_t)mantissa * 0x1p-24);
    uint64_t magnitude = exponent == 0 ? subnormal : normal;
    magnitude = exponent == 0x1f ? special : magnitude;
    return double_from_bits(sign | magnitude);
}

static inline double bfloat16_to_double_inline(uint16_t bits)
{
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return (double)value; /* float -> double is exact, NaN payload kept */
}

double ms_half_to_double(uint16_t bits)
{
    return half_to_double_inline(bits);
}

uint16_t ms_half_from_double(double value)
{
    return narrow_from_double(value, 5, 10, HALF_SUBNORMAL_SCALE);
}

double ms_bfloat16_to_double(uint16_t bits)
{
    return bfloat16_to_double_inline(bits);
}

uint16_t ms_bfloat16_from_double(double value)
{
    return narrow_from_double(value, 8, 7, BFLOAT16_SUBNORMAL_SCALE);
}

float ms_float_from_double(double value)
{
    return (float)value; /* IEEE conversion in the current (default RNE) mode */
}

/* Half -> double through a 65536-entry table (512 KB, built once): one load
 * per element, about twice as fast as the bit manipulation above, and LoRA
 * weights touch only a few hot cache lines of it.  Worth building only for
 * long runs; short ones (scalars) take the inline path. */
enum { half_table_threshold = 4096 };
static double half_table[65536];
static pthread_once_t half_table_once = PTHREAD_ONCE_INIT;

static void build_half_table(void)
{
    for (uint32_t bits = 0; bits < 65536; bits++)
        half_table[bits] = half_to_double_inline((uint16_t)bits);
}

static void half_to_double_table(const unsigned char *bytes, double *target, size_t count)
{
    pthread_once(&half_table_once, build_half_table);
    for (size_t i = 0; i < count; i++) {
        uint16_t bits;
        memcpy(&bits, bytes + 2 * i, sizeof bits);
        target[i] = half_table[bits];
    }
}

/* Half <-> double with the F16C and AVX2 instructions, chosen at run time.
 * Widening is exact both ways (half -> float -> double).  Narrowing goes
 * double -> float rounded to odd (truncate, then set the last bit when
 * anything was cut off), then float -> half to nearest even: with float's 13
 * spare bits that gives exactly the rounding of a direct double -> half
 * (Boldo and Melquiond's round-to-odd), so both paths agree bit for bit.
 * Blocks holding NaN or Inf go through the scalar code, which keeps NaN
 * payloads its own way. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define MS_DTYPE_HAVE_F16C 1

/* CPUID, not __builtin_cpu_supports: clang 14 does not know "f16c" there.
 * AVX2 and F16C, and the operating system saving the YMM registers. */
static bool f16c_detected;
static pthread_once_t f16c_once = PTHREAD_ONCE_INIT;

static void detect_f16c(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((ecx & (osxsave | avx | f16c)) != (osxsave | avx | f16c))
        return;
    unsigned xcr0_low, xcr0_high;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    (void)xcr0_high;
    if ((xcr0_low & 6u) != 6u)
        return;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return;
    f16c_detected = (ebx & (1u << 5)) != 0;   /* AVX2 */
}

static bool f16c_usable(void)
{
    pthread_once(&f16c_once, detect_f16c);
    return f16c_detected;
}

__attribute__((target("avx2,f16c")))
static void half_to_double_f16c(const unsigned char *bytes, double *target, size_t count)
{
    const __m128i exponent = _mm_set1_epi16(0x7c00);
    for (size_t i = 0; i < count; i += 8) {
        __m128i half = _mm_loadu_si128((const __m128i *)(const void *)(bytes + 2 * i));
        __m128i special = _mm_cmpeq_epi16(_mm_and_si128(half, exponent), exponent);
        if (_mm_movemask_epi8(special) != 0) {
            for (size_t j = i; j < i + 8; j++) {
                uint16_t bits;
                memcpy(&bits, bytes + 2 * j, sizeof bits);
                target[j] = half_to_double_inline(bits);
            }
            continue;
        }
        __m256 single = _mm256_cvtph_ps(half);
        _mm256_storeu_pd(target + i, _mm256_cvtps_pd(_mm256_castps256_ps128(single)));
        _mm256_storeu_pd(target + i + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(single, 1)));
    }
}

/* Four doubles to floats rounded to odd; false when one is NaN or Inf. */
__attribute__((target("avx2,f16c")))
static inline bool round_to_odd(__m256d value, __m128 *result)
{
    const __m256d sign = _mm256_set1_pd(-0.0);
    const __m256i lanes = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256d magnitude = _mm256_andnot_pd(sign, value);
    if (_mm256_movemask_pd(_mm256_cmp_pd(magnitude, _mm256_set1_pd(INFINITY), _CMP_NLT_UQ)))
        return false;
    __m128 nearest = _mm256_cvtpd_ps(value);
    __m256d back = _mm256_cvtps_pd(nearest);
    __m256d above = _mm256_cmp_pd(_mm256_andnot_pd(sign, back), magnitude, _CMP_GT_OQ);
    __m256d inexact = _mm256_cmp_pd(back, value, _CMP_NEQ_UQ);
    /* 64-bit lane masks down to 32-bit ones */
    __m128i above32 = _mm256_castsi256_si128(
        _mm256_permutevar8x32_epi32(_mm256_castpd_si256(above), lanes));
    __m128i inexact32 = _mm256_castsi256_si128(
        _mm256_permutevar8x32_epi32(_mm256_castpd_si256(inexact), lanes));
    /* rounded away from zero: one step back toward it (sign-magnitude bits) */
    __m128i bits = _mm_add_epi32(_mm_castps_si128(nearest), above32);
    bits = _mm_or_si128(bits, _mm_and_si128(inexact32, _mm_set1_epi32(1)));
    *result = _mm_castsi128_ps(bits);
    return true;
}

__attribute__((target("avx2,f16c")))
static void half_from_double_f16c(const double *source, unsigned char *bytes, size_t count)
{
    for (size_t i = 0; i < count; i += 8) {
        __m128 low, high;
        if (!round_to_odd(_mm256_loadu_pd(source + i), &low) ||
            !round_to_odd(_mm256_loadu_pd(source + i + 4), &high)) {
            for (size_t j = i; j < i + 8; j++) {
                uint16_t bits = narrow_from_double(source[j], 5, 10, HALF_SUBNORMAL_SCALE);
                memcpy(bytes + 2 * j, &bits, sizeof bits);
            }
            continue;
        }
        __m128i half = _mm256_cvtps_ph(_mm256_set_m128(high, low),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(bytes + 2 * i), half);
    }
}
#endif

/* The vector paths take whole blocks of 8; the return value says how many
 * elements they converted (0 without the instructions). */
static size_t half_to_double_vector(const unsigned char *bytes, double *target, size_t count)
{
#ifdef MS_DTYPE_HAVE_F16C
    size_t blocks = count & ~(size_t)7;
    if (blocks > 0 && f16c_usable()) {
        half_to_double_f16c(bytes, target, blocks);
        return blocks;
    }
#else
    (void)bytes;
    (void)target;
    (void)count;
#endif
    return 0;
}

static size_t half_from_double_vector(const double *source, unsigned char *bytes, size_t count)
{
#ifdef MS_DTYPE_HAVE_F16C
    size_t blocks = count & ~(size_t)7;
    if (blocks > 0 && f16c_usable()) {
        half_from_double_f16c(source, bytes, blocks);
        return blocks;
    }
#else
    (void)source;
    (void)bytes;
    (void)count;
#endif
    return 0;
}

void ms_dtype_to_double(ms_dtype dtype, const void *source, double *target, size_t count)
{
    const unsigned char *bytes = source;
    switch (dtype) {
    case MS_DTYPE_F16: {
        size_t done = half_to_double_vector(bytes, target, count);
        bytes += 2 * done;
        target += done;
        count -= done;
        if (count >= half_table_threshold) {
            half_to_double_table(bytes, target, count);
            break;
        }
        for (size_t i = 0; i < count; i++) {
            uint16_t bits;
            memcpy(&bits, bytes + 2 * i, sizeof bits);
            target[i] = half_to_double_inline(bits);
        }
        break;
    }
    case MS_DTYPE_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t bits;
            memcpy(&bits, bytes + 2 * i, sizeof bits);
            target[i] = bfloat16_to_double_inline(bits);
        }
        break;
    case MS_DTYPE_F32:
        for (size_t i = 0; i < count; i++) {
            float value;
            memcpy(&value, bytes + 4 * i, sizeof value);
            target[i] = value;
        }
        break;
    case MS_DTYPE_F64:
        memcpy(target, source, count * sizeof(double));
        break;
    default:
        /* Not a compute type: make misuse loud (NaN is refused downstream). */
        for (size_t i = 0; i < count; i++)
            target[i] = NAN;
        break;
    }
}

void ms_dtype_from_double(ms_dtype dtype, const double *source, void *target, size_t count)
{
    unsigned char *bytes = target;
    switch (dtype) {
    case MS_DTYPE_F16: {
        size_t i = half_from_double_vector(source, bytes, count);
        for (; i + 16 <= count; i += 16)
            for (size_t j = 0; j < 16; j++) {
                uint16_t bits = narrow_from_double(source[i + j], 5, 10, HALF_SUBNORMAL_SCALE);
                memcpy(bytes + 2 * (i + j), &bits, sizeof bits);
            }
        for (; i < count; i++) {
            uint16_t bits = narrow_from_double(source[i], 5, 10, HALF_SUBNORMAL_SCALE);
            memcpy(bytes + 2 * i, &bits, sizeof bits);
        }
        break;
    }
    case MS_DTYPE_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t bits = narrow_from_double(source[i], 8, 7, BFLOAT16_SUBNORMAL_SCALE);
            memcpy(bytes + 2 * i, &bits, sizeof bits);
        }
        break;
    case MS_DTYPE_F32:
        for (size_t i = 0; i < count; i++) {
            float value = (float)source[i];
            memcpy(bytes + 4 * i, &value, sizeof value);
        }
        break;
    case MS_DTYPE_F64:
        memcpy(target, source, count * sizeof(double));
        break;
    default:
        break; /* callers check ms_dtype_is_float first */
    }
}

/* Whether any of values[0 .. count) is NaN or Inf: NaN and Inf are the only
 * doubles whose exponent bits are all ones, and adding one unit to an
 * all-ones exponent (and only to that one) carries into bit 63.  Adds and
 * ors only, so the compiler vectorises it. */
static inline bool any_non_finite(const double *values, size_t count)
{
    const uint64_t exponent_mask = UINT64_C(0x7ff) << 52;
    const uint64_t exponent_unit = UINT64_C(1) << 52;
    uint64_t any = 0;
    for (size_t i = 0; i < count; i++)
        any |= (double_bits(values[i]) & exponent_mask) + exponent_unit;
    return (any >> 63) != 0;
}

size_t ms_first_non_finite(const double *values, size_t count)
{
    /* Full blocks go through a constant trip count, which gcc vectorises
     * even at -O2 (its cheap cost model refuses unknown counts): about 2x.
     * The culprit is located only in a bad block. */
    enum { block = 256 };
    size_t start = 0;
    for (; start < count; start += block) {
        size_t length = count - start < block ? count - start : block;
        bool bad = length == block ? any_non_finite(values + start, block)
                                   : any_non_finite(values + start, length);
        if (bad) {
            for (size_t i = start; i < start + length; i++)
                if (!isfinite(values[i]))
                    return i;
        }
    }
    return count;
}
