/* Cortex-M runner under QEMU semihosting: reads input.bin and writes output.bin in the
 * directory QEMU runs in (semihosting file I/O), same byte layout as run_model. */
#include <stdio.h>
#include "model.h"

int main(void) {
    int i;
    FILE *f = fopen("input.bin", "rb");
    if (!f) { printf("run_model_qemu: cannot open input.bin\n"); return 1; }
    for (i = 0; i < MODEL_NUM_INPUTS; i++)
        if (fread(model_input(i), 1, model_input_bytes(i), f) != model_input_bytes(i)) {
            printf("run_model_qemu: short input.bin\n");
            return 1;
        }
    fclose(f);
    model_invoke();
    f = fopen("output.bin", "wb");
    if (!f) { printf("run_model_qemu: cannot write output.bin\n"); return 1; }
    for (i = 0; i < MODEL_NUM_OUTPUTS; i++)
        fwrite(model_output(i), 1, model_output_bytes(i), f);
    fclose(f);
    printf("run_model_qemu: ok\n");
    return 0;
}
