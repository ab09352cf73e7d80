/* Test stub: declarations of the TinyEngine kernels that tinyir's emitter calls, with the
   signatures of mit-han-lab/tinyengine TinyEngine/include/tinyengine_function.h and
   fp_requantize_op.h (written for tinyir's tests; no bodies). */
#ifndef TINYIR_STUB_TINYENGINE_FUNCTION_H_
#define TINYIR_STUB_TINYENGINE_FUNCTION_H_
#include <stdint.h>
#include <stddef.h>

typedef int8_t q7_t;
typedef uint8_t q8_t;
typedef int16_t q15_t;
typedef uint16_t q16_t;
typedef int32_t q31_t;
typedef uint32_t q32_t;

typedef enum { STATE_SUCCESS = 0, PARAM_NO_SUPPORT = 1 } tinyengine_status;

#define TE_CONV_1X1_FPREQ(name)                                                            \
  tinyengine_status name(const q7_t *input, const uint16_t input_x, const uint16_t input_y,  \
                         const uint16_t input_ch, const q7_t *kernel, const int32_t *bias,   \
                         const float *scales, const int32_t out_offset,                      \
                         const int32_t input_offset, const int32_t out_activation_min,       \
                         const int32_t out_activation_max, q7_t *output,                     \
                         const uint16_t output_x, const uint16_t output_y,                   \
                         const uint16_t output_ch, q15_t *runtime_buf);
TE_CONV_1X1_FPREQ(convolve_1x1_s8_fpreq)
TE_CONV_1X1_FPREQ(convolve_1x1_s8_ch8_fpreq)
TE_CONV_1X1_FPREQ(convolve_1x1_s8_ch16_fpreq)
TE_CONV_1X1_FPREQ(convolve_1x1_s8_ch24_fpreq)
TE_CONV_1X1_FPREQ(convolve_1x1_s8_ch48_fpreq)

tinyengine_status convolve_s8_kernel3_inputch3_stride2_pad1_fpreq(
    const q7_t *input, const uint16_t input_x, const uint16_t input_y, const uint16_t input_ch,
    const q7_t *kernel, const int32_t *bias, const float *scales, const int32_t output_offset,
    const int32_t input_offset, const int32_t output_activation_min,
    const int32_t output_activation_max, q7_t *output, const uint16_t output_x,
    const uint16_t output_y, const uint16_t output_ch, q15_t *runtime_buf, q15_t *kbuf,
    q7_t pad_value);

tinyengine_status add_fpreq(int size, const int8_t *input1_data, const float input1_scale,
                            const float input1_zero, const int8_t *input2_data,
                            const float input2_scale, const float input2_zero,
                            const float output_scale, const float zero_y, int8_t *output_data);

tinyengine_status avg_pooling(const q7_t *input, const uint16_t input_h, const uint16_t input_w,
                              const uint16_t input_c, const uint16_t sample_h,
                              const uint16_t sample_w, const uint16_t output_h,
                              const uint16_t output_w, const int32_t out_activation_min,
                              const int32_t out_activation_max, q7_t *output);

tinyengine_status max_pooling(const q7_t *input, const uint16_t input_h, const uint16_t input_w,
                              const uint16_t input_c, const uint16_t sample_h,
                              const uint16_t sample_w, const uint16_t output_h,
                              const uint16_t output_w, const int32_t out_activation_min,
                              const int32_t out_activation_max, q7_t *output);

tinyengine_status upsample_byte(const q7_t *input, const uint16_t input_x,
                                const uint16_t input_y, const uint16_t input_ch, q7_t *output,
                                const uint16_t sample_factor);

#include "genInclude.h"
#endif
