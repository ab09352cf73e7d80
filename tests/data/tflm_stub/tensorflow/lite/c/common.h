// Test stub: the parts of TFLM's TfLiteTensor that generated main.cc uses.
#ifndef TINYIR_STUB_TFLITE_COMMON_H_
#define TINYIR_STUB_TFLITE_COMMON_H_
#include <cstddef>
#include <cstdint>
typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef union TfLitePtrUnion {
  int32_t* i32; int64_t* i64; float* f; char* raw; const char* raw_const;
  uint8_t* uint8; int16_t* i16; int8_t* int8; void* data;
} TfLitePtrUnion;
typedef struct TfLiteTensor { int type; TfLitePtrUnion data; void* dims; size_t bytes; } TfLiteTensor;
#endif
