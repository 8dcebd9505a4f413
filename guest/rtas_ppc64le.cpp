#include "guest/rtas_ppc64le.h"

#include "guest/fdt_util.h"
#include "guest/firmware_call_ppc64le.h"

#include <libfdt.h>

namespace svmkit::guest {

namespace {

constexpr int kMaxArgs = 4;

uint32_t token(const void* fdt, int node, const char* name) {
    int len = 0;
    const void* p = fdt_getprop(fdt, node, name, &len);
    return p != nullptr && len == 4 ? get_be32(p) : kRtasNoToken;
}

} // namespace

bool rtas_from_fdt(const void* fdt, Rtas* out) {
    const int node = fdt_path_offset(fdt, "/rtas");
    Rtas r;
    if (node < 0 || !fdt_read_u64(fdt, node, "linux,rtas-base", &r.base) ||
        !fdt_read_u64(fdt, node, "linux,rtas-entry", &r.entry) || r.entry >= (1ull << 32) ||
        r.base >= (1ull << 32))
        return false;
    r.os_term = token(fdt, node, "ibm,os-term");
    r.power_off = token(fdt, node, "power-off");
    *out = r;
    return true;
}

long rtas_call(const Rtas& rtas, uint32_t tok, const uint32_t* args, int nargs) {
    if (tok == kRtasNoToken || nargs < 0 || nargs > kMaxArgs)
        return -1;
    // token, nargs, nret = 1, arguments, the status.
    uint32_t block[3 + kMaxArgs + 1] __attribute__((aligned(8)));
    if (!below_4g(block, sizeof block))
        return -1;
    block[0] = __builtin_bswap32(tok);
    block[1] = __builtin_bswap32(static_cast<uint32_t>(nargs));
    block[2] = __builtin_bswap32(1);
    for (int i = 0; i < nargs; ++i)
        block[3 + i] = __builtin_bswap32(args[i]);
    block[3 + nargs] = 0xffffffff;
    svmkit_call_be_firmware(reinterpret_cast<uintptr_t>(block), rtas.base, rtas.entry);
    return static_cast<int32_t>(__builtin_bswap32(block[3 + nargs]));
}

void rtas_os_term(const Rtas& rtas, const char* message) {
    if (!below_4g(message))
        return;
    const uint32_t args[1] = {static_cast<uint32_t>(reinterpret_cast<uintptr_t>(message))};
    rtas_call(rtas, rtas.os_term, args, 1);
}

void rtas_power_off(const Rtas& rtas) {
    // No power-on event: both halves of the event mask zero.
    const uint32_t args[2] = {0, 0};
    rtas_call(rtas, rtas.power_off, args, 2);
}

} // namespace svmkit::guest
