/* Cortex-M4 vector table: initial stack pointer and reset handler (newlib's _start). */
#include <stdint.h>
extern void _start(void);
extern uint32_t __StackTop;
static void fault(void) { for (;;) {} }
__attribute__((section(".vectors"), used))
void (*const tinyir_vectors[16])(void) = {
    (void (*)(void))&__StackTop, _start, fault, fault, fault, fault, fault, 0, 0, 0, 0,
    fault, fault, 0, fault, fault,
};
