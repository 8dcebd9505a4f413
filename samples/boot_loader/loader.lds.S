/* Linker script of the boot loader (a normal guest program), run through the
 * C preprocessor: placed by the machine's firmware at its p_paddr
 * (platform/guest_program.hpp), clear of the sample kernel (0x200000), the
 * firmware's FDT and stack (0x3e00000..0x4000000) and the secure-image base
 * (0x4000000), where the images it loads go. The entry is the first byte.
 */
#define PROGRAM_LOAD 0x8000000
#define PROGRAM_ENTRY svmkit_boot_loader_entry
#define PROGRAM_START __loader_start
#define PROGRAM_END __loader_end
#include "samples/common/guest_program.lds.h"
