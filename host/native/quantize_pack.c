/* vitcod.host._quantize_pack: fused quantize + pack of float images into the overlay's stream words.
 *
 * One portable C path, no per-ISA intrinsics: it is what the boards' Arm cores run (the compiler
 * vectorises it for NEON); on x86 the host only drives the C-simulated IP, where a former AVX2 path
 * saved ~30 us of a ~15 s predict() of the 360 digits test images (< 0.001%), so it was removed.
 *
 * Why this exists: numpy has no fused "scale, round with an ap_types mode, saturate, pack into
 * 64-bit words" operation, so the numpy path (vitcod.host.wire / vitcod.host.quantization) makes several
 * passes over the batch; this makes one. It is optional: when it is not built (no C compiler at
 * install time) the numpy path runs and gives the same words. The numpy path is the reference;
 * tests/host/test_host_native.py checks that both give the same words and the same saturation count,
 * bit for bit, over every rounding mode, widths 1..52 and the edge values (ties, range bounds,
 * infinities, huge and tiny values).
 *
 * Semantics (those of FixedFormat.round_float): s = x * 2^frac in the computation precision
 * (float for float32 input and width <= 23, else double); raw = round(s) with the type's mode,
 * saturated to [lo, hi] and counted when it was outside. Word format (wire.py): value k of an
 * image in bits [k*W, k*W+W) of word k / floor(64/W), each image starts on a fresh word, unused
 * bits zero.
 *
 * The loops are branch-free over the values and use plain conversions (truncation, no floor() or
 * libm call), so that compilers vectorise them (NEON on the boards' Arm cores, SSE2 on x86-64)
 * without target-specific code; the module reports it as simd = "generic".
 *
 * The module also holds the two other per-batch passes of the driver: count_nonfinite (the NaN/Inf
 * check of the input) and unpack (output words -> int64 raws), each checked against numpy the same
 * way.
 *
 * Plain C99 + the CPython buffer protocol (no numpy headers).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Same order as ROUNDING_MODES in host/contract/aptypes.py (the wrapper passes the index). */
enum { AP_TRN, AP_TRN_ZERO, AP_RND, AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF, AP_RND_CONV, N_MODES };

#define CHUNK 4096 /* values per block: the staging buffer, and int32 saturation counts cannot overflow */

/* ============================================================================================ */
/* Rows: quantize a block of values                                                             */
/* ============================================================================================ */

/* The rounding increment of each mode, from s, its floor f (fm as a float) and the midpoint
 * m = f + 1/2 (exact wherever the decision matters). Never from the fraction s - f: that rounds for
 * -1/2 < s < 0 (1 + s needs more bits than s), and the float just above -1/2 would look like a tie.
 * Bitwise & and | (not && and ||) so the loop has no branches and vectorises. */
#define UP_TRN(I, s, f, fm, m) ((void)(s), (void)(fm), (void)(m), (I)0)
#define UP_TRN_ZERO(I, s, f, fm, m) ((void)(m), (I)((s) > (fm)) & (I)((f) < 0))
#define UP_RND(I, s, f, fm, m) ((void)(fm), (I)((s) >= (m)))
#define UP_RND_ZERO(I, s, f, fm, m) ((void)(fm), (I)((s) > (m)) | ((I)((s) == (m)) & (I)((f) < 0)))
#define UP_RND_MIN_INF(I, s, f, fm, m) ((void)(fm), (I)((s) > (m)))
#define UP_RND_INF(I, s, f, fm, m) ((void)(fm), (I)((s) > (m)) | ((I)((s) == (m)) & (I)((f) >= 0)))
/* ties: the parity of f, masked in by -(tie) - written so that GCC still vectorises it */
#define UP_RND_CONV(I, s, f, fm, m) ((void)(fm), ((I)((s) > (m)) | (-(I)((s) == (m)) & (f))) & 1)

/* n <= CHUNK values: x -> raws in out (type OUT); saturations and NaNs counted. A negative x whose
 * scaling underflowed to -0 (a type with more integer bits than width scales down) is given its
 * sign back as -1/4: far below half an LSB, every mode rounds it as the true value (ap_types floors
 * it to -1 under AP_TRN); only types that scale down (scale < 1) run that check. s is clamped to
 * [lo - 2, hi + 2] first: beyond that every mode saturates, and it keeps the integer conversion in
 * range. floor(s) = trunc(s) - (s < trunc(s)):
 * truncation is a plain conversion (SSE2/NEON), where floor() would need SSE4.1 or a libm call per
 * value. */
#define ROW_LOOP(T, I, OUT, UP, SCALES_DOWN)                                                    \
    for (Py_ssize_t i = 0; i < n; ++i) {                                                        \
        T s = x[i] * scale;                                                                     \
        nan_seen |= (I)(s != s);                                                                \
        if (SCALES_DOWN) s = (s == (T)0) & (x[i] < (T)0) ? (T)-0.25 : s;                        \
        s = s < lo2 ? lo2 : s;                                                                  \
        s = s > hi2 ? hi2 : s;                                                                  \
        const I t = (I)s;                                                                       \
        const I f = t - (I)((T)t > s);                                                          \
        const T fm = (T)f;                                                                      \
        const T m = fm + (T)0.5;                                                                \
        I r = f + UP(I, s, f, fm, m);                                                           \
        sat += (I)(r < lo) + (I)(r > hi);                                                       \
        r = r < lo ? lo : r;                                                                    \
        r = r > hi ? hi : r;                                                                    \
        out[i] = (OUT)r;                                                                        \
    }

#define ROW_SWITCH(T, I, OUT, SCALES_DOWN)                                                      \
    switch (mode) {                                                                             \
    case AP_TRN: ROW_LOOP(T, I, OUT, UP_TRN, SCALES_DOWN) break;                                \
    case AP_TRN_ZERO: ROW_LOOP(T, I, OUT, UP_TRN_ZERO, SCALES_DOWN) break;                      \
    case AP_RND: ROW_LOOP(T, I, OUT, UP_RND, SCALES_DOWN) break;                                \
    case AP_RND_ZERO: ROW_LOOP(T, I, OUT, UP_RND_ZERO, SCALES_DOWN) break;                      \
    case AP_RND_MIN_INF: ROW_LOOP(T, I, OUT, UP_RND_MIN_INF, SCALES_DOWN) break;                \
    case AP_RND_INF: ROW_LOOP(T, I, OUT, UP_RND_INF, SCALES_DOWN) break;                        \
    default: ROW_LOOP(T, I, OUT, UP_RND_CONV, SCALES_DOWN) break;                               \
    }

#define DEFINE_ROW(NAME, T, I, OUT)                                                             \
    static void NAME(const T *restrict x, Py_ssize_t n, OUT *restrict out, T scale, I lo, I hi, \
                     int mode, int64_t *sat_out, int *nan_out) {                                \
        const T lo2 = (T)(lo - 2), hi2 = (T)(hi + 2);                                           \
        I sat = 0, nan_seen = 0; /* n <= CHUNK: no overflow */                                  \
        if (scale < (T)1) {                                                                     \
            ROW_SWITCH(T, I, OUT, 1)                                                            \
        } else { /* nothing underflows: the loop without the sign fix */                        \
            ROW_SWITCH(T, I, OUT, 0)                                                            \
        }                                                                                       \
        *sat_out += sat;                                                                        \
        *nan_out |= (nan_seen != 0);                                                            \
    }

/* float path: float32 input, width <= 23 (every raw is a float integer); int32 raws */
DEFINE_ROW(row_f_u8, float, int32_t, uint8_t)
DEFINE_ROW(row_f_u16, float, int32_t, uint16_t)
DEFINE_ROW(row_f_i32, float, int32_t, int32_t)
/* double path: float64 input (or float32 with width > 23), width <= 52; int64 raws */
DEFINE_ROW(row_d_u8, double, int64_t, uint8_t)
DEFINE_ROW(row_d_u16, double, int64_t, uint16_t)
DEFINE_ROW(row_d_u32, double, int64_t, uint32_t)
DEFINE_ROW(row_d_i64, double, int64_t, int64_t)

/* OR n_words * vpw raws (padding raws zero) into whole words; VPW a constant where it is
 * specialised below, so the inner loop unrolls. */
#define PACK_LOOP(I, VPW)                                                                       \
    for (Py_ssize_t w = 0; w < n_words; ++w) {                                                  \
        uint64_t word = 0;                                                                      \
        for (int k = 0; k < (VPW); ++k)                                                         \
            word |= ((uint64_t)raws[w * (VPW) + k] & mask) << (k * width);                      \
        words[w] = word;                                                                        \
    }

#define DEFINE_PACK(I)                                                                          \
    static void pack_words_##I(const I *raws, Py_ssize_t n_words, int width, uint64_t *words) { \
        const int vpw = 64 / width;                                                             \
        const uint64_t mask = ((uint64_t)1 << width) - 1; /* width <= 52 */                     \
        switch (vpw) {                                                                          \
        case 2: PACK_LOOP(I, 2) break;                                                          \
        case 3: PACK_LOOP(I, 3) break;                                                          \
        case 4: PACK_LOOP(I, 4) break;                                                          \
        case 5: PACK_LOOP(I, 5) break;                                                          \
        case 6: PACK_LOOP(I, 6) break;                                                          \
        case 7: PACK_LOOP(I, 7) break;                                                          \
        default: PACK_LOOP(I, vpw) break;                                                       \
        }                                                                                       \
    }
DEFINE_PACK(int32_t)
DEFINE_PACK(int64_t)

/* ============================================================================================ */
/* Batch                                                                                        */
/* ============================================================================================ */

/* The whole batch in blocks of at most CHUNK values. When images need no padding (n a multiple
 * of the values per word) the batch is one flat run. Byte-aligned widths store straight into the
 * words seen as 8/16/32-bit fields (little-endian hosts only; the wrapper checks); other widths
 * stage the raws of whole words, then pack them. */
#define DEFINE_BATCH(NAME, T, I, ROW_U8, ROW_U16, ROW_U32, ROW_I, OUT32)                         \
    static void NAME(const T *x, Py_ssize_t batch, Py_ssize_t n, uint64_t *words, Py_ssize_t wpi, \
                     int width, T scale, I lo, I hi, int mode, int64_t *sat, int *nan) {        \
        const int vpw = 64 / width;                                                             \
        if (n % vpw == 0) { /* no padding between images: one flat run of values */            \
            n *= batch;                                                                         \
            wpi *= batch;                                                                       \
            batch = batch ? 1 : 0;                                                              \
        }                                                                                       \
        const Py_ssize_t slots = wpi * vpw; /* fields per image, padding included */            \
        const Py_ssize_t chunk = (CHUNK / vpw) * vpw;                                           \
        I stage[CHUNK];                                                                         \
        for (Py_ssize_t b = 0; b < batch; ++b) {                                                \
            const T *xb = x + b * n;                                                            \
            uint64_t *wb = words + b * wpi;                                                     \
            for (Py_ssize_t a = 0; a < n; a += chunk) {                                         \
                const Py_ssize_t m = n - a < chunk ? n - a : chunk;                             \
                if (width == 8) {                                                               \
                    ROW_U8(xb + a, m, (uint8_t *)wb + a, scale, lo, hi, mode, sat, nan);        \
                } else if (width == 16) {                                                       \
                    ROW_U16(xb + a, m, (uint16_t *)wb + a, scale, lo, hi, mode, sat, nan);      \
                } else if (width == 32) {                                                       \
                    ROW_U32(xb + a, m, (OUT32 *)wb + a, scale, lo, hi, mode, sat, nan);         \
                } else {                                                                        \
                    const Py_ssize_t m_words = (m + vpw - 1) / vpw;                             \
                    ROW_I(xb + a, m, stage, scale, lo, hi, mode, sat, nan);                     \
                    for (Py_ssize_t k = m; k < m_words * vpw; ++k) stage[k] = 0;                \
                    pack_words_##I(stage, m_words, width, wb + a / vpw);                        \
                }                                                                               \
            }                                                                                   \
            if ((width == 8 || width == 16 || width == 32) && slots > n) /* zero the padding */  \
                memset((char *)wb + n * (width / 8), 0, (size_t)(slots - n) * (width / 8));    \
        }                                                                                       \
    }
DEFINE_BATCH(batch_f, float, int32_t, row_f_u8, row_f_u16, row_f_i32, row_f_i32, int32_t)
DEFINE_BATCH(batch_d, double, int64_t, row_d_u8, row_d_u16, row_d_u32, row_d_i64, uint32_t)

/* ============================================================================================ */
/* Python binding                                                                               */
/* ============================================================================================ */

#define NOT_HANDLED (-2) /* the input is for the numpy path: returned, not raised */

static int is_uint64_buffer(const Py_buffer *b) {
    const char *f = b->format ? b->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') ++f; /* native little-endian hosts only (wrapper checks) */
    return b->itemsize == 8 && (strcmp(f, "Q") == 0 || strcmp(f, "L") == 0);
}

/* quantize_pack(x, words, n_values, width, lo, hi, scale, mode) - METH_FASTCALL: this runs
 * once per batch and its argument parsing is part of what the driver pays. */
static PyObject *quantize_pack(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "quantize_pack expects 8 arguments, got %zd", nargs);
        return NULL;
    }
    const Py_ssize_t n_values = PyLong_AsSsize_t(args[2]);
    const long width = PyLong_AsLong(args[3]);
    const long long lo = PyLong_AsLongLong(args[4]), hi = PyLong_AsLongLong(args[5]);
    const double scale = PyFloat_AsDouble(args[6]);
    const long mode = PyLong_AsLong(args[7]);
    if (PyErr_Occurred()) return NULL;
    if (mode < 0 || mode >= N_MODES || lo > 0 || hi < 0 || !(scale >= 0) || n_values < 1) {
        /* scale 0: 2^frac underflowed (frac < -1074); every value then rounds as its sign says */
        PyErr_SetString(PyExc_ValueError, "bad format arguments (mode, lo <= 0 <= hi, scale >= 0, n_values >= 1)");
        return NULL;
    }
    Py_buffer xb, wb;
    if (PyObject_GetBuffer(args[0], &xb, PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyErr_Clear(); /* not a buffer we can read directly: the numpy path decides */
        return PyLong_FromLong(NOT_HANDLED);
    }
    const char *xf = xb.format ? xb.format : "B";
    const int is_float = strcmp(xf, "f") == 0, is_double = strcmp(xf, "d") == 0;
    if (!(is_float || is_double) || !PyBuffer_IsContiguous(&xb, 'C') || width < 1 || width > 52 ||
        (is_float && width > 23) || xb.len % (n_values * xb.itemsize)) {
        PyBuffer_Release(&xb);
        return PyLong_FromLong(NOT_HANDLED);
    }
    if (PyObject_GetBuffer(args[1], &wb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&xb);
        return NULL; /* BufferError: read-only or not contiguous */
    }
    const Py_ssize_t batch = xb.len / (n_values * xb.itemsize);
    const Py_ssize_t wpi = (n_values + 64 / width - 1) / (64 / width);
    PyObject *result = NULL;
    if (!is_uint64_buffer(&wb) || wb.len != batch * wpi * 8) {
        PyErr_Format(PyExc_ValueError, "output buffer must be %zd uint64 words", batch * wpi);
    } else {
        int64_t sat = 0;
        int nan = 0;
        Py_BEGIN_ALLOW_THREADS
        if (is_float)
            batch_f((const float *)xb.buf, batch, n_values, (uint64_t *)wb.buf, wpi, (int)width, (float)scale,
                    (int32_t)lo, (int32_t)hi, (int)mode, &sat, &nan);
        else
            batch_d((const double *)xb.buf, batch, n_values, (uint64_t *)wb.buf, wpi, (int)width, scale,
                    (int64_t)lo, (int64_t)hi, (int)mode, &sat, &nan);
        Py_END_ALLOW_THREADS
        /* NaN: the words are not defined; the caller falls back to the numpy path. */
        result = PyLong_FromLongLong(nan ? -1 : (long long)sat);
    }
    PyBuffer_Release(&xb);
    PyBuffer_Release(&wb);
    return result;
}

/* Non-finite values (NaN, +-inf) among n floats: exponent bits all ones. Integer operations only,
 * so compilers vectorise it with SSE2/NEON; the driver checks every batch with it before
 * anything reaches the device (np.isfinite(x).all() makes a bool array and costs more than the
 * quantize+pack itself). */
#define NONFINITE_BLOCK ((Py_ssize_t)1 << 20) /* a uint32 count per block: no widening in the loop */
static Py_ssize_t count_nonfinite_f(const uint32_t *restrict bits, Py_ssize_t n) {
    Py_ssize_t count = 0;
    for (Py_ssize_t a = 0; a < n; a += NONFINITE_BLOCK) {
        const Py_ssize_t m = n - a < NONFINITE_BLOCK ? n - a : NONFINITE_BLOCK;
        uint32_t block = 0;
        for (Py_ssize_t i = 0; i < m; ++i) block += (bits[a + i] & 0x7F800000u) == 0x7F800000u;
        count += block;
    }
    return count;
}

/* doubles: the exponent is in the high 32-bit half (little-endian hosts; the wrapper checks) */
static Py_ssize_t count_nonfinite_d(const uint32_t *restrict halves, Py_ssize_t n) {
    Py_ssize_t count = 0;
    for (Py_ssize_t a = 0; a < n; a += NONFINITE_BLOCK) {
        const Py_ssize_t m = n - a < NONFINITE_BLOCK ? n - a : NONFINITE_BLOCK;
        uint32_t block = 0;
        for (Py_ssize_t i = 0; i < m; ++i) block += (halves[2 * (a + i) + 1] & 0x7FF00000u) == 0x7FF00000u;
        count += block;
    }
    return count;
}

static PyObject *count_nonfinite(PyObject *self, PyObject *x_obj) {
    (void)self;
    Py_buffer xb;
    if (PyObject_GetBuffer(x_obj, &xb, PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(NOT_HANDLED);
    }
    const char *xf = xb.format ? xb.format : "B";
    const int is_float = strcmp(xf, "f") == 0, is_double = strcmp(xf, "d") == 0;
    Py_ssize_t count = NOT_HANDLED;
    if ((is_float || is_double) && PyBuffer_IsContiguous(&xb, 'C')) {
        const Py_ssize_t n = xb.len / xb.itemsize;
        Py_BEGIN_ALLOW_THREADS
        count = is_float ? count_nonfinite_f((const uint32_t *)xb.buf, n) : count_nonfinite_d((const uint32_t *)xb.buf, n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&xb);
    return PyLong_FromSsize_t(count);
}

/* Words -> int64 raws (the inverse of the packing, what the driver runs on every output batch).
 * Returns nonzero when `strict` and a bit outside the values is set (the caller names it). */
static int unpack_batch(const uint64_t *words, Py_ssize_t batch, Py_ssize_t n, Py_ssize_t wpi, int width,
                        int is_signed, int strict, int64_t *out) {
    const int vpw = 64 / width, used = vpw * width, lift = 64 - width;
    const uint64_t mask = ((uint64_t)1 << width) - 1; /* width <= 62 */
    const Py_ssize_t full = n / vpw;                  /* words whose every slot is a value */
    uint64_t stray = 0;                               /* OR of every bit that must be zero */
    for (Py_ssize_t b = 0; b < batch; ++b) {
        const uint64_t *wb = words + b * wpi;
        int64_t *ob = out + b * n;
        for (Py_ssize_t w = 0; w < wpi; ++w) {
            const uint64_t word = wb[w];
            if (used < 64) stray |= word >> used;
            const int k_end = w < full ? vpw : (int)(n - w * vpw); /* the last word may be partial */
            for (int k = 0; k < k_end; ++k) {
                const uint64_t f = (word >> (k * width)) & mask;
                ob[w * vpw + k] = is_signed ? (int64_t)(f << lift) >> lift : (int64_t)f;
            }
            if (k_end < vpw) /* the padding slots of a partial last word (fewer than 64 bits) */
                stray |= (word >> (k_end * width)) & (((uint64_t)1 << (used - k_end * width)) - 1);
        }
    }
    return strict && stray != 0;
}

/* unpack(words, out, n_values, width, signed, strict) -> 0, 1 (strict: a padding bit is set; out
 * undefined), or -2 (words not a C-contiguous uint64 buffer of whole images: for numpy). */
static PyObject *unpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "unpack expects 6 arguments, got %zd", nargs);
        return NULL;
    }
    const Py_ssize_t n_values = PyLong_AsSsize_t(args[2]);
    const long width = PyLong_AsLong(args[3]);
    const int is_signed = PyObject_IsTrue(args[4]), strict = PyObject_IsTrue(args[5]);
    if (PyErr_Occurred()) return NULL;
    if (n_values < 1 || width < 1 || width > 62) {
        PyErr_SetString(PyExc_ValueError, "n_values must be >= 1 and width 1..62");
        return NULL;
    }
    Py_buffer wb, ob;
    if (PyObject_GetBuffer(args[0], &wb, PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(NOT_HANDLED);
    }
    const Py_ssize_t wpi = (n_values + 64 / width - 1) / (64 / width);
    if (!is_uint64_buffer(&wb) || !PyBuffer_IsContiguous(&wb, 'C') || wb.len == 0 || wb.len % (wpi * 8)) {
        PyBuffer_Release(&wb);
        return PyLong_FromLong(NOT_HANDLED);
    }
    if (PyObject_GetBuffer(args[1], &ob, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&wb);
        return NULL;
    }
    const Py_ssize_t batch = wb.len / (wpi * 8);
    const char *of = ob.format ? ob.format : "B";
    if (*of == '<' || *of == '=' || *of == '@') ++of;
    PyObject *result = NULL;
    if (ob.itemsize != 8 || !(strcmp(of, "q") == 0 || strcmp(of, "l") == 0) || ob.len != batch * n_values * 8) {
        PyErr_Format(PyExc_ValueError, "output must be %zd int64 values", batch * n_values);
    } else {
        int stray;
        Py_BEGIN_ALLOW_THREADS
        stray = unpack_batch((const uint64_t *)wb.buf, batch, n_values, wpi, (int)width, is_signed, strict,
                             (int64_t *)ob.buf);
        Py_END_ALLOW_THREADS
        result = PyLong_FromLong(stray);
    }
    PyBuffer_Release(&wb);
    PyBuffer_Release(&ob);
    return result;
}

static PyMethodDef methods[] = {
    {"unpack", (PyCFunction)(void (*)(void))unpack, METH_FASTCALL,
     "unpack(words, out, n_values, width, signed, strict) -> 0, 1 when strict and a padding bit is set,\n"
     "-2 when words is not a C-contiguous uint64 buffer of whole images (use vitcod.host.wire.unpack)."},
    {"count_nonfinite", count_nonfinite, METH_O,
     "count_nonfinite(x) -> number of NaN/inf values in a C-contiguous float32/float64 buffer, -2 for\n"
     "anything else (use vitcod.host.wire.count_nonfinite, which falls back to numpy)."},
    {"quantize_pack", (PyCFunction)(void (*)(void))quantize_pack, METH_FASTCALL,
     "quantize_pack(x, words, n_values, width, lo, hi, scale, mode) -> saturated count;\n"
     "-1 when x holds NaN (words undefined), -2 when x is not for this kernel (not C-contiguous\n"
     "float32/float64, width > 52, or float32 with width > 23). words: writable C-contiguous uint64\n"
     "buffer of exactly batch * words_per_image words (ValueError otherwise). Call it through\n"
     "vitcod.host.wire.quantize_pack, which handles the -1/-2 cases with the numpy path."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_quantize_pack",
                                    "Fused quantize + pack, unpack and the NaN/Inf count of the host (see vitcod.host.wire).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__quantize_pack(void) {
    PyObject *m = PyModule_Create(&module);
    /* simd: which kernel this is, for vitcod.host.native_kernel(); one portable path */
    if (m != NULL && PyModule_AddStringConstant(m, "simd", "generic") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
