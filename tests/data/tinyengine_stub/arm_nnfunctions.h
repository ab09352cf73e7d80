/* Test stub: CMSIS-NN header that generated TinyEngine code includes (nothing used). */
#ifndef TINYIR_STUB_ARM_NNFUNCTIONS_H_
#define TINYIR_STUB_ARM_NNFUNCTIONS_H_
#include <stddef.h>
#endif
