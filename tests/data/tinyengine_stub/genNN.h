/* Test stub of TinyEngine/include/genNN.h: the fixed API of generated code. */
#ifndef TINYIR_STUB_GENNN_H_
#define TINYIR_STUB_GENNN_H_
#include <stdint.h>
signed char *getInput(void);
signed char *getOutput(void);
void end2endinference(int8_t *img);
void invoke(float *labels);
void invoke_inf(void);
#endif
