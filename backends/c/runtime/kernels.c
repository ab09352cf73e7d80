/* tinyir reference C kernels; see kernels.h.  Each follows the numpy reference kernel in
 * tinyir/interp (tfl_kernels.py, tfl_activation.py, tfl_shape.py) line by line. */
#include <string.h>
#include "kernels.h"

#define I32_MIN ((int32_t)(-2147483647 - 1))
#define I32_MAX ((int32_t)2147483647)

static int32_t wadd(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t wsub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* gemmlowp SaturatingRoundingDoublingHighMul */
static int32_t srdhm(int32_t a, int32_t b) {
    int64_t ab, nudge;
    if (a == b && a == I32_MIN) return I32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));  /* C division truncates */
}

/* gemmlowp RoundingDivideByPOT (int64 so exponents above 31 behave like the numpy kernel) */
static int32_t rdbpot(int32_t x, int32_t e) {
    int64_t mask = ((int64_t)1 << e) - 1;
    int64_t rem = (int64_t)x & mask;
    int64_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> e) + (rem > thr ? 1 : 0));
}

/* MultiplyByQuantizedMultiplier (double rounding, TFLM's default build) */
static int32_t mbqm(int32_t x, int32_t m, int32_t shift) {
    int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return rdbpot(srdhm((int32_t)((uint32_t)x << left), m), right);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT */
static int32_t sat_mul_pot(int32_t x, int32_t e) {
    int32_t thr;
    if (e == 0) return x;
    if (e < 0) return rdbpot(x, -e);
    thr = (int32_t)(((int64_t)1 << (31 - e)) - 1);
    if (x > thr) return I32_MAX;
    if (x < -thr) return I32_MIN;
    return (int32_t)((uint32_t)x << e);
}

static int32_t clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

static int32_t exp_quarter_interval(int32_t a) {
    const int32_t constant_term = 1895147668, one_third = 715827883;
    int32_t x = wadd(a, 1 << 28);
    int32_t x2 = srdhm(x, x), x3 = srdhm(x2, x), x4 = srdhm(x2, x2);
    int32_t x4_over_4 = sat_mul_pot(x4, -2);
    int32_t poly = sat_mul_pot(wadd(srdhm(wadd(x4_over_4, x3), one_third), x2), -1);
    return wadd(constant_term, srdhm(constant_term, wadd(x, poly)));
}

/* gemmlowp exp_on_negative_values: Q(integer_bits) input, Q0.31 result */
static int32_t exp_on_negative_values(int32_t a, int32_t integer_bits) {
    static const int32_t barrel[7][2] = {{-2, 1672461947}, {-1, 1302514674}, {0, 790015084},
                                         {1, 290630308}, {2, 39332535}, {3, 720401}, {4, 242}};
    int32_t frac_bits = 31 - integer_bits, one_quarter = (int32_t)1 << (frac_bits - 2);
    int32_t a_mod = wsub(a & (one_quarter - 1), one_quarter);
    int32_t result = exp_quarter_interval(sat_mul_pot(a_mod, integer_bits));
    int32_t remainder = wsub(a_mod, a);
    int k;
    for (k = 0; k < 7; k++) {
        if (integer_bits > barrel[k][0]) {
            int32_t bit = (int32_t)((uint32_t)1 << (frac_bits + barrel[k][0]));
            if (remainder & bit) result = srdhm(result, barrel[k][1]);
        }
    }
    if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits))) result = 0;
    return a == 0 ? I32_MAX : result;
}

static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    int64_t s = (int64_t)a + I32_MAX;
    int32_t half_den, x;
    int k;
    s += s >= 0 ? 1 : -1;
    half_den = (int32_t)(s / 2);
    x = wadd(1515870810, srdhm(half_den, -1010580540));
    for (k = 0; k < 3; k++) {
        int32_t one_minus = wsub(1 << 29, srdhm(half_den, x));
        x = wadd(x, sat_mul_pot(srdhm(x, one_minus), 2));
    }
    return sat_mul_pot(x, 1);
}

static int32_t clz32(uint32_t u) {
    int32_t n = 0;
    if (u == 0) return 32;
    while (!(u & 0x80000000u)) { u <<= 1; n++; }
    return n;
}

/* ---- convolutions ------------------------------------------------------------------- */

void tir_conv2d_s8(const tir_conv_params *p, const int8_t *in, const int8_t *w,
                   const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t b, oy, ox, oc, ky, kx, ic;
    int32_t cin_f = p->depth_mult;  /* filter input depth (groups = in_c / cin_f) */
    int32_t per_group = p->out_c / (p->in_c / cin_f);
    for (b = 0; b < p->batches; b++)
    for (oy = 0; oy < p->out_h; oy++)
    for (ox = 0; ox < p->out_w; ox++)
    for (oc = 0; oc < p->out_c; oc++) {
        int32_t acc = 0, g0 = (oc / per_group) * cin_f;
        for (ky = 0; ky < p->k_h; ky++) {
            int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
            if (iy < 0 || iy >= p->in_h) continue;
            for (kx = 0; kx < p->k_w; kx++) {
                int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                const int8_t *xp, *wp;
                if (ix < 0 || ix >= p->in_w) continue;
                xp = in + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c + g0;
                wp = w + ((oc * p->k_h + ky) * p->k_w + kx) * cin_f;
                for (ic = 0; ic < cin_f; ic++) acc += (xp[ic] - p->in_zp) * wp[ic];
            }
        }
        if (bias) acc += bias[oc];
        acc = mbqm(acc, mult[oc], shift[oc]) + p->out_zp;
        out[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
            (int8_t)clamp(acc, p->act_min, p->act_max);
    }
}

static void depthwise_channels(const tir_conv_params *p, const int8_t *in, int32_t in_c,
                               int32_t c_lo, int32_t c_hi, const int8_t *w, const int32_t *bias,
                               const int32_t *mult, const int32_t *shift, int8_t *out) {
    /* reads input channels [c_lo, c_hi) of `in` (in_c channels per pixel) */
    int32_t b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batches; b++)
    for (oy = 0; oy < p->out_h; oy++)
    for (ox = 0; ox < p->out_w; ox++)
    for (ic = c_lo; ic < c_hi; ic++)
    for (m = 0; m < p->depth_mult; m++) {
        int32_t oc = ic * p->depth_mult + m, acc = 0;
        for (ky = 0; ky < p->k_h; ky++) {
            int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
            if (iy < 0 || iy >= p->in_h) continue;
            for (kx = 0; kx < p->k_w; kx++) {
                int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) continue;
                acc += (in[((b * p->in_h + iy) * p->in_w + ix) * in_c + (in_c == 1 ? 0 : ic)]
                        - p->in_zp) * w[(ky * p->k_w + kx) * p->out_c + oc];
            }
        }
        if (bias) acc += bias[oc];
        acc = mbqm(acc, mult[oc], shift[oc]) + p->out_zp;
        out[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
            (int8_t)clamp(acc, p->act_min, p->act_max);
    }
}

void tir_depthwise_s8(const tir_conv_params *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias, const int32_t *mult, const int32_t *shift,
                      int8_t *out, int8_t *scratch) {
    size_t in_bytes = (size_t)p->batches * p->in_h * p->in_w * p->in_c;
    size_t out_bytes = (size_t)p->batches * p->out_h * p->out_w * p->out_c;
    int overlap = (const int8_t *)out < in + in_bytes && in < (const int8_t *)out + out_bytes;
    if (!overlap) {
        depthwise_channels(p, in, p->in_c, 0, p->in_c, w, bias, mult, shift, out);
    } else if (p->depth_mult == 1 && p->batches == 1 && out == in) {
        /* in place: output channel c only overwrites input channel c, so stage one
         * channel at a time in the scratch buffer (TinyEngine's scheme) */
        int32_t c, i, pixels = p->in_h * p->in_w;
        for (c = 0; c < p->in_c; c++) {
            for (i = 0; i < pixels; i++) scratch[i] = in[i * p->in_c + c];
            depthwise_channels(p, scratch, 1, c, c + 1, w, bias, mult, shift, out);
        }
    } else {
        memcpy(scratch, in, in_bytes);
        depthwise_channels(p, scratch, p->in_c, 0, p->in_c, w, bias, mult, shift, out);
    }
}

void tir_fully_connected_s8(int32_t batches, int32_t depth, int32_t units, const int8_t *in,
                            const int8_t *w, const int32_t *bias, int32_t in_zp, int32_t out_zp,
                            const int32_t *mult, const int32_t *shift, int32_t act_min,
                            int32_t act_max,
                            int8_t *out) {
    int32_t b, u, d;
    for (b = 0; b < batches; b++)
        for (u = 0; u < units; u++) {
            int32_t acc = 0;
            const int8_t *x = in + b * depth, *wr = w + u * depth;
            for (d = 0; d < depth; d++) acc += (x[d] - in_zp) * wr[d];
            if (bias) acc += bias[u];
            acc = mbqm(acc, mult[u], shift[u]) + out_zp;
            out[b * units + u] = (int8_t)clamp(acc, act_min, act_max);
        }
}

/* ---- pooling ------------------------------------------------------------------------ */

static void pool_s8(const tir_conv_params *p, const int8_t *in, int8_t *out, int is_max) {
    int32_t b, oy, ox, c, ky, kx;
    for (b = 0; b < p->batches; b++)
    for (oy = 0; oy < p->out_h; oy++)
    for (ox = 0; ox < p->out_w; ox++)
    for (c = 0; c < p->in_c; c++) {
        int32_t acc = 0, cnt = 0, best = -128;
        for (ky = 0; ky < p->k_h; ky++) {
            int32_t iy = oy * p->stride_h - p->pad_top + ky;
            if (iy < 0 || iy >= p->in_h) continue;
            for (kx = 0; kx < p->k_w; kx++) {
                int32_t ix = ox * p->stride_w - p->pad_left + kx, v;
                if (ix < 0 || ix >= p->in_w) continue;
                v = in[((b * p->in_h + iy) * p->in_w + ix) * p->in_c + c];
                acc += v;
                cnt++;
                if (v > best) best = v;
            }
        }
        if (!is_max) {
            int32_t half = cnt / 2;
            best = acc > 0 ? (acc + half) / cnt : -((half - acc) / cnt);
        }
        out[((b * p->out_h + oy) * p->out_w + ox) * p->in_c + c] =
            (int8_t)clamp(best, p->act_min, p->act_max);
    }
}

void tir_avg_pool_s8(const tir_conv_params *p, const int8_t *in, int8_t *out) { pool_s8(p, in, out, 0); }
void tir_max_pool_s8(const tir_conv_params *p, const int8_t *in, int8_t *out) { pool_s8(p, in, out, 1); }

/* ---- binary arithmetic (4-D broadcast) ------------------------------------------------ */

static void binary_s8(const tir_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out,
                      int is_mul) {
    int32_t i0, i1, i2, i3, o = 0;
    for (i0 = 0; i0 < p->shape[0]; i0++)
    for (i1 = 0; i1 < p->shape[1]; i1++)
    for (i2 = 0; i2 < p->shape[2]; i2++)
    for (i3 = 0; i3 < p->shape[3]; i3++, o++) {
        int32_t x1 = a[i0 * p->a_stride[0] + i1 * p->a_stride[1] + i2 * p->a_stride[2]
                       + i3 * p->a_stride[3]] - p->a_zp;
        int32_t x2 = b[i0 * p->b_stride[0] + i1 * p->b_stride[1] + i2 * p->b_stride[2]
                       + i3 * p->b_stride[3]] - p->b_zp;
        int32_t y;
        if (is_mul) {
            y = mbqm(x1 * x2, p->out_mult, p->out_shift) + p->out_zp;
        } else {
            int32_t y1 = rdbpot(srdhm((int32_t)((uint32_t)x1 << p->left_shift), p->a_mult), -p->a_shift);
            int32_t y2 = rdbpot(srdhm((int32_t)((uint32_t)x2 << p->left_shift), p->b_mult), -p->b_shift);
            y = rdbpot(srdhm(wadd(y1, y2), p->out_mult), -p->out_shift) + p->out_zp;
        }
        out[o] = (int8_t)clamp(y, p->act_min, p->act_max);
    }
}

void tir_add_s8(const tir_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out) { binary_s8(p, a, b, out, 0); }
void tir_mul_s8(const tir_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out) { binary_s8(p, a, b, out, 1); }

/* ---- softmax (TFLM reference_ops::Softmax, int8 in and out) -------------------------- */

void tir_softmax_s8(int32_t rows, int32_t depth, int32_t mult, int32_t shift, int32_t diff_min,
                    const int8_t *in, int8_t *out) {
    int32_t r, i;
    for (r = 0; r < rows; r++) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        int32_t max = -128, sum = 0, hp1, bits_over_unit, recip;
        uint32_t shifted;
        for (i = 0; i < depth; i++) if (x[i] > max) max = x[i];
        for (i = 0; i < depth; i++) {
            int32_t diff = x[i] - max;
            if (diff >= diff_min) {
                int32_t scaled = srdhm((int32_t)((uint32_t)diff << shift), mult);
                sum = wadd(sum, sat_mul_pot(exp_on_negative_values(scaled, 5), -12));
            }
        }
        hp1 = clz32((uint32_t)sum);
        bits_over_unit = 12 - hp1;
        shifted = (uint32_t)(((uint64_t)(uint32_t)sum << hp1) - ((uint64_t)1 << 31));
        recip = one_over_one_plus_x_for_x_in_0_1((int32_t)shifted);
        for (i = 0; i < depth; i++) {
            int32_t diff = x[i] - max, v = -128;
            if (diff >= diff_min) {
                int32_t scaled = srdhm((int32_t)((uint32_t)diff << shift), mult);
                int32_t e = exp_on_negative_values(scaled, 5);
                v = clamp(rdbpot(srdhm(recip, e), bits_over_unit + 31 - 8) - 128, -128, 127);
            }
            y[i] = (int8_t)v;
        }
    }
}

/* ---- MEAN (QuantizedMeanOrSum, 1/n folded into the multiplier) ----------------------- */

void tir_mean_s8(const int32_t shape[4], const int32_t reduced[4], int32_t in_zp, int32_t out_zp,
                 int32_t mult, int32_t shift, const int8_t *in, int8_t *out) {
    int32_t od[4], rd[4], st[4], o[4], r[4], k, n = 1, idx = 0;
    st[3] = 1;
    for (k = 2; k >= 0; k--) st[k] = st[k + 1] * shape[k + 1];
    for (k = 0; k < 4; k++) {
        od[k] = reduced[k] ? 1 : shape[k];
        rd[k] = reduced[k] ? shape[k] : 1;
        n *= rd[k];
    }
    for (o[0] = 0; o[0] < od[0]; o[0]++)
    for (o[1] = 0; o[1] < od[1]; o[1]++)
    for (o[2] = 0; o[2] < od[2]; o[2]++)
    for (o[3] = 0; o[3] < od[3]; o[3]++) {
        int32_t total = 0, y;
        for (r[0] = 0; r[0] < rd[0]; r[0]++)
        for (r[1] = 0; r[1] < rd[1]; r[1]++)
        for (r[2] = 0; r[2] < rd[2]; r[2]++)
        for (r[3] = 0; r[3] < rd[3]; r[3]++)
            total += in[(o[0] + r[0]) * st[0] + (o[1] + r[1]) * st[1] + (o[2] + r[2]) * st[2]
                        + (o[3] + r[3]) * st[3]];
        y = mbqm(wsub(total, in_zp * n), mult, shift) + out_zp;
        out[idx++] = (int8_t)clamp(y, -128, 127);
    }
}

/* ---- element-wise tables, (de)quantisation -------------------------------------------- */

void tir_lut_s8(int32_t n, const int8_t *lut, const int8_t *in, int8_t *out) {
    int32_t i;
    for (i = 0; i < n; i++) out[i] = lut[in[i] + 128];
}

void tir_lut_s8_to_f32(int32_t n, const float *lut, const int8_t *in, float *out) {
    int32_t i;
    for (i = n - 1; i >= 0; i--) out[i] = lut[in[i] + 128];  /* backwards: out may start at in */
}

void tir_quantize_f32_s8(int32_t n, float scale, int32_t zp, const float *in, int8_t *out) {
    int32_t i;
    for (i = 0; i < n; i++) {
        float q = in[i] / scale;               /* float32 division, as TFLM */
        double a = (double)(q < 0 ? -q : q), r;
        r = (double)(int64_t)(a + 0.5);         /* floor for non-negative values */
        if (q < 0) r = -r;
        if (r < -2147483648.0) r = -2147483648.0;
        if (r > 2147483647.0) r = 2147483647.0;
        out[i] = (int8_t)clamp((int32_t)((int64_t)r + zp > I32_MAX ? I32_MAX : (int64_t)r + zp), -128, 127);
    }
}

/* ---- data movement ------------------------------------------------------------------ */

void tir_copy(size_t n, const void *in, void *out) {
    if (in != out) memmove(out, in, n);
}

void tir_pad(const int32_t in_shape[4], const int32_t before[4], const int32_t out_shape[4],
             int32_t elem, const void *fill, const void *in, void *out) {
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    int32_t o[4], k;
    for (o[0] = 0; o[0] < out_shape[0]; o[0]++)
    for (o[1] = 0; o[1] < out_shape[1]; o[1]++)
    for (o[2] = 0; o[2] < out_shape[2]; o[2]++)
    for (o[3] = 0; o[3] < out_shape[3]; o[3]++) {
        int inside = 1;
        int32_t idx = 0;
        for (k = 0; k < 4; k++) {
            int32_t i = o[k] - before[k];
            if (i < 0 || i >= in_shape[k]) inside = 0;
            idx = idx * in_shape[k] + i;
        }
        memcpy(dst, inside ? src + (size_t)idx * elem : (const uint8_t *)fill, (size_t)elem);
        dst += elem;
    }
}

void tir_transpose(const int32_t out_shape[4], const int32_t in_stride[4], int32_t elem,
                   const void *in, void *out) {
    const uint8_t *src = (const uint8_t *)in;
    uint8_t *dst = (uint8_t *)out;
    int32_t o[4];
    for (o[0] = 0; o[0] < out_shape[0]; o[0]++)
    for (o[1] = 0; o[1] < out_shape[1]; o[1]++)
    for (o[2] = 0; o[2] < out_shape[2]; o[2]++)
    for (o[3] = 0; o[3] < out_shape[3]; o[3]++) {
        int32_t idx = o[0] * in_stride[0] + o[1] * in_stride[1] + o[2] * in_stride[2]
                      + o[3] * in_stride[3];
        memcpy(dst, src + (size_t)idx * elem, (size_t)elem);
        dst += elem;
    }
}

void tir_concat(int32_t outer, int32_t n_inputs, const int32_t *chunk_bytes,
                const void *const *ins, void *out) {
    uint8_t *dst = (uint8_t *)out;
    int32_t o, k;
    for (o = 0; o < outer; o++)
        for (k = 0; k < n_inputs; k++) {
            memcpy(dst, (const uint8_t *)ins[k] + (size_t)o * chunk_bytes[k], (size_t)chunk_bytes[k]);
            dst += chunk_bytes[k];
        }
}
