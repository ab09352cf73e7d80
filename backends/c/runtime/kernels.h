/* tinyir reference C kernels: portable C99, no dynamic memory.
 * Integer arithmetic is TFLM's (double-rounding MultiplyByQuantizedMultiplier,
 * gemmlowp fixed point), so int8 results are bit-exact with tflite-micro.
 * Shapes are padded to 4-D (N, H, W, C) by the generator. */
#ifndef TINYIR_KERNELS_H
#define TINYIR_KERNELS_H
#include <stdint.h>
#include <stddef.h>

typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, batches;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t in_zp, out_zp, act_min, act_max, depth_mult;
} tir_conv_params;

void tir_conv2d_s8(const tir_conv_params *p, const int8_t *in, const int8_t *w,
                   const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out);
/* scratch: in_h*in_w bytes (depth_mult 1) or the whole input, used when out overlaps in */
void tir_depthwise_s8(const tir_conv_params *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias, const int32_t *mult, const int32_t *shift,
                      int8_t *out, int8_t *scratch);
void tir_fully_connected_s8(int32_t batches, int32_t depth, int32_t units, const int8_t *in,
                            const int8_t *w, const int32_t *bias, int32_t in_zp, int32_t out_zp,
                            const int32_t *mult, const int32_t *shift, int32_t act_min,
                            int32_t act_max,
                            int8_t *out);
void tir_avg_pool_s8(const tir_conv_params *p, const int8_t *in, int8_t *out);
void tir_max_pool_s8(const tir_conv_params *p, const int8_t *in, int8_t *out);

typedef struct {
    int32_t shape[4];          /* output shape */
    int32_t a_stride[4], b_stride[4];  /* element strides, 0 where broadcast */
    int32_t a_zp, b_zp, out_zp, left_shift;
    int32_t a_mult, a_shift, b_mult, b_shift, out_mult, out_shift, act_min, act_max;
} tir_binary_params;
void tir_add_s8(const tir_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out);
void tir_mul_s8(const tir_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out);

void tir_softmax_s8(int32_t rows, int32_t depth, int32_t mult, int32_t shift, int32_t diff_min,
                    const int8_t *in, int8_t *out);
void tir_mean_s8(const int32_t shape[4], const int32_t reduced[4], int32_t in_zp, int32_t out_zp,
                 int32_t mult, int32_t shift, const int8_t *in, int8_t *out);
void tir_lut_s8(int32_t n, const int8_t *lut, const int8_t *in, int8_t *out);
void tir_lut_s8_to_f32(int32_t n, const float *lut, const int8_t *in, float *out);
void tir_quantize_f32_s8(int32_t n, float scale, int32_t zp, const float *in, int8_t *out);
/* byte-level data movement (any element size) */
void tir_copy(size_t n, const void *in, void *out);
void tir_pad(const int32_t in_shape[4], const int32_t before[4], const int32_t out_shape[4],
             int32_t elem, const void *fill, const void *in, void *out);
void tir_transpose(const int32_t out_shape[4], const int32_t in_stride[4], int32_t elem,
                   const void *in, void *out);
void tir_concat(int32_t outer, int32_t n_inputs, const int32_t *chunk_bytes,
                const void *const *ins, void *out);
#endif
