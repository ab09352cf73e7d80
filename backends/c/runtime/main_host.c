/* Host runner: raw input tensors' bytes (in input order) on stdin, raw output tensors'
 * bytes (in output order) on stdout.  Exit 1 on short input. */
#include <stdio.h>
#include "model.h"

int main(void) {
    int i;
    for (i = 0; i < MODEL_NUM_INPUTS; i++) {
        size_t n = model_input_bytes(i);
        if (fread(model_input(i), 1, n, stdin) != n) {
            fprintf(stderr, "run_model: input %d needs %lu bytes\n", i, (unsigned long)n);
            return 1;
        }
    }
    model_invoke();
    for (i = 0; i < MODEL_NUM_OUTPUTS; i++)
        fwrite(model_output(i), 1, model_output_bytes(i), stdout);
    fflush(stdout);
    return 0;
}
