// RTAS (PAPR run-time abstraction services) for the ppc64le stub after a
// kexec-style entry, when Open Firmware is gone: stopping the VM. Linux
// instantiates RTAS during its Open Firmware boot and records where in the
// device tree it passes on (/rtas linux,rtas-base and linux,rtas-entry, and
// one token per service), which is how a kexec'd stub finds it.
//
// A call passes one argument block, all 32-bit big-endian cells: token,
// number of arguments, number of results, arguments, results. RTAS runs
// big-endian, 32-bit, in real mode (guest/firmware_call_ppc64le.S), with
// r3 = the block and r4 = the RTAS base.
#pragma once

#include <stdint.h>

namespace svmkit::guest {

inline constexpr uint32_t kRtasNoToken = 0xffffffff;

struct Rtas {
    uint64_t base = 0;
    uint64_t entry = 0;
    uint32_t os_term = kRtasNoToken;   // "ibm,os-term": the OS ends, with a message
    uint32_t power_off = kRtasNoToken; // "power-off"
};

// Reads /rtas from a device tree that passed fdt_check_full; false when it
// has no instantiated RTAS below 4 GiB.
bool rtas_from_fdt(const void* fdt, Rtas* out);

// Calls `token` with up to 4 arguments; its status (the first result), or -1
// when the token is missing.
long rtas_call(const Rtas& rtas, uint32_t token, const uint32_t* args, int nargs);

// ibm,os-term with `message` (NUL-terminated, below 4 GiB): the platform
// records that the OS stopped (QEMU: a guest panic). May return.
void rtas_os_term(const Rtas& rtas, const char* message);
// power-off: the VM ends. May return when the call fails.
void rtas_power_off(const Rtas& rtas);

} // namespace svmkit::guest
