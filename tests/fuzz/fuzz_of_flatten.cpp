// Fuzz target: what Open Firmware answers the firmware-style stub while it
// flattens the device tree (guest/of_flatten.h). The input is the firmware:
// a fake client interface takes every answer (phandles from peer and child,
// paths, property names, lengths and values) from the input's bytes in call
// order; once the bytes run out every call answers "none", so each run ends.
//
// Oracle, beyond no crash / no UB / no leak: a flattening that succeeds
// leaves a tree that passes fdt_check_full, with the boot CPU asked for,
// whose nodes and properties the result counted, and which of_finish_tree
// completes (or refuses with a libfdt error) into a tree that still passes.
#include "guest/fdt_util.cpp"   // NOLINT(bugprone-suspicious-include)
#include "guest/of_flatten.cpp" // NOLINT(bugprone-suspicious-include)

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace svmkit::guest;

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

struct ByteFirmware {
    const uint8_t* data;
    size_t size;
    mutable size_t at = 0;

    uint8_t byte() const { return at < size ? data[at++] : 0; }
    // Up to `n` bytes of the input into `out`; how many there were.
    size_t take(void* out, size_t n) const {
        const size_t k = n < size - at ? n : size - at;
        std::memcpy(out, data + at, k);
        at += k;
        return k;
    }
    // A phandle: mostly none (0), sometimes a failure, else a small number.
    uint32_t handle() const {
        const uint8_t b = byte();
        if (b == 0xff)
            return kOfInvalid;
        return b < 0x60 ? 0 : b;
    }

    uint32_t peer(uint32_t ph) const { return ph == 0 ? (byte() == 0xff ? 0 : 1) : handle(); }
    uint32_t child(uint32_t) const { return handle(); }
    int32_t package_to_path(uint32_t, char* buf, uint32_t bufsize) const {
        const uint8_t len = byte();
        const size_t got = take(buf, len < bufsize ? len : bufsize);
        return byte() == 0xff ? -1 : static_cast<int32_t>(len == 0 ? got : len);
    }
    int32_t nextprop(uint32_t, const char*, char* buf) const {
        const uint8_t b = byte();
        if (b % 4 == 0)
            return 0;
        if (b == 0xff)
            return -1;
        // The stub's buffer holds kOfPropNameBuf + 1 bytes.
        take(buf, byte() % (kOfPropNameBuf + 1));
        return 1;
    }
    int32_t getproplen(uint32_t, const char*) const {
        const uint8_t b = byte();
        if (b == 0xff)
            return -1;
        if (b == 0xfe) {
            int32_t v = 0;
            take(&v, sizeof v);
            return v;
        }
        return b;
    }
    int32_t getprop(uint32_t, const char*, void* buf, uint32_t bufsize) const {
        take(buf, bufsize);
        const uint8_t b = byte();
        return b == 0xfd ? static_cast<int32_t>(bufsize) + 1 : static_cast<int32_t>(bufsize);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const ByteFirmware of{data, size};
    std::vector<uint8_t> buf(64 << 10);
    OfWalk walk;
    const Range reserved[1] = {Range{0x2a00000, 0x1000}};
    const uint32_t boot_cpu = 7;
    const OfFlattenResult r =
        of_flatten(of, buf.data(), static_cast<uint32_t>(buf.size()), reserved, 1, boot_cpu, walk);
    check(r.path[kOfMaxPath - 1] == '\0');
    if (r.error != OfFlattenError::none)
        return 0;
    void* fdt = buf.data();
    check(fdt_check_full(fdt, fdt_totalsize(fdt)) == 0);
    check(fdt_boot_cpuid_phys(fdt) == boot_cpu);
    check(fdt_num_mem_rsv(fdt) == 1);
    uint32_t nodes = 0;
    uint32_t props = 0;
    int depth = 0;
    // Past the root's end the depth goes negative (and the offset does not).
    for (int node = 0; node >= 0 && depth >= 0; node = fdt_next_node(fdt, node, &depth)) {
        ++nodes;
        int prop = 0;
        fdt_for_each_property_offset(prop, fdt, node)++ props;
    }
    check(nodes == r.nodes);
    check(props >= r.props); // plus the phandles added
    if (of_finish_tree(fdt, static_cast<uint32_t>(buf.size()), 0x2a00000, 0x2a00000, 0x1000) == 0)
        check(fdt_check_full(fdt, fdt_totalsize(fdt)) == 0);
    return 0;
}
