/* Linker script of the sample guest kernel, run through the C preprocessor.
 *
 * Linked for the simulated platform's guest RAM (virtual = guest VA base +
 * physical), with each segment's physical (load) address in p_paddr, so
 * `svmkit build --kernel` takes the load address (the lowest p_paddr) and the
 * entry offset from the ELF headers. The entry is the first byte.
 */
#define PROGRAM_LOAD 0x200000
#define PROGRAM_ENTRY svmkit_sample_kernel_entry
#define PROGRAM_START __kernel_start
#define PROGRAM_END __kernel_end
#include "samples/common/guest_program.lds.h"
