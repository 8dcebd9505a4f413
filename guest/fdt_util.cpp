#include "guest/fdt_util.h"

#include "guest/fdt_walk.h"

#include <libfdt.h>

namespace svmkit::guest {

int fdt_check_full_strict(const void* fdt, uint32_t size) {
    return fdtwalk::fdt_check_full_strict(fdt, size);
}

const char* fdt_error_name(int err) {
    switch (err < 0 ? -err : err) {
    case 0:
        return "no error";
    case FDT_ERR_NOTFOUND:
        return "FDT_ERR_NOTFOUND";
    case FDT_ERR_EXISTS:
        return "FDT_ERR_EXISTS";
    case FDT_ERR_NOSPACE:
        return "FDT_ERR_NOSPACE";
    case FDT_ERR_BADOFFSET:
        return "FDT_ERR_BADOFFSET";
    case FDT_ERR_BADPATH:
        return "FDT_ERR_BADPATH";
    case FDT_ERR_BADPHANDLE:
        return "FDT_ERR_BADPHANDLE";
    case FDT_ERR_BADSTATE:
        return "FDT_ERR_BADSTATE";
    case FDT_ERR_TRUNCATED:
        return "FDT_ERR_TRUNCATED";
    case FDT_ERR_BADMAGIC:
        return "FDT_ERR_BADMAGIC";
    case FDT_ERR_BADVERSION:
        return "FDT_ERR_BADVERSION";
    case FDT_ERR_BADSTRUCTURE:
        return "FDT_ERR_BADSTRUCTURE";
    case FDT_ERR_BADLAYOUT:
        return "FDT_ERR_BADLAYOUT";
    case FDT_ERR_INTERNAL:
        return "FDT_ERR_INTERNAL";
    case FDT_ERR_BADNCELLS:
        return "FDT_ERR_BADNCELLS";
    case FDT_ERR_BADVALUE:
        return "FDT_ERR_BADVALUE";
    case FDT_ERR_BADOVERLAY:
        return "FDT_ERR_BADOVERLAY";
    case FDT_ERR_NOPHANDLES:
        return "FDT_ERR_NOPHANDLES";
    case FDT_ERR_BADFLAGS:
        return "FDT_ERR_BADFLAGS";
    case FDT_ERR_ALIGNMENT:
        return "FDT_ERR_ALIGNMENT";
    default:
        return "FDT_ERR_?";
    }
}

void put_be32(void* p, uint32_t v) {
    auto* b = static_cast<uint8_t*>(p);
    for (int i = 0; i < 4; ++i)
        b[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

void put_be64(void* p, uint64_t v) {
    put_be32(p, static_cast<uint32_t>(v >> 32));
    put_be32(static_cast<uint8_t*>(p) + 4, static_cast<uint32_t>(v));
}

uint32_t get_be32(const void* p) {
    const auto* b = static_cast<const uint8_t*>(p);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

uint64_t get_be64(const void* p) {
    return (uint64_t{get_be32(p)} << 32) | get_be32(static_cast<const uint8_t*>(p) + 4);
}

bool fdt_read_u64(const void* fdt, int node, const char* name, uint64_t* out) {
    int len = 0;
    const void* p = fdt_getprop(fdt, node, name, &len);
    if (p == nullptr)
        return false;
    if (len == 4) {
        *out = get_be32(p);
        return true;
    }
    if (len == 8) {
        *out = get_be64(p);
        return true;
    }
    return false;
}

bool fdt_read_u64_exact(const void* fdt, int node, const char* name, uint64_t* out) {
    int len = 0;
    const void* p = fdt_getprop(fdt, node, name, &len);
    if (p == nullptr || len != 8)
        return false;
    *out = get_be64(p);
    return true;
}

const char* fdt_read_string(const void* fdt, int node, const char* name, int* len) {
    int n = 0;
    const char* p = static_cast<const char*>(fdt_getprop(fdt, node, name, &n));
    if (p == nullptr || n < 1 || p[n - 1] != '\0')
        return nullptr;
    for (int i = 0; i < n - 1; ++i)
        if (p[i] == '\0')
            return nullptr;
    if (len != nullptr)
        *len = n - 1;
    return p;
}

bool fdt_cells(const void* fdt, int node, int* address_cells, int* size_cells) {
    int len = 0;
    const void* a = fdt_getprop(fdt, node, "#address-cells", &len);
    uint32_t ac = 2;
    if (a != nullptr) {
        if (len != 4)
            return false;
        ac = get_be32(a);
    }
    const void* s = fdt_getprop(fdt, node, "#size-cells", &len);
    uint32_t sc = 1;
    if (s != nullptr) {
        if (len != 4)
            return false;
        sc = get_be32(s);
    }
    if (ac < 1 || ac > 2 || sc < 1 || sc > 2)
        return false;
    *address_cells = static_cast<int>(ac);
    *size_cells = static_cast<int>(sc);
    return true;
}

bool fdt_first_memory(const void* fdt, Range* out) {
    int ac = 0;
    int sc = 0;
    if (!fdt_cells(fdt, 0, &ac, &sc))
        return false;
    const int node = fdt_node_offset_by_prop_value(fdt, -1, "device_type", "memory", 7);
    if (node < 0)
        return false;
    int len = 0;
    const auto* reg = static_cast<const uint8_t*>(fdt_getprop(fdt, node, "reg", &len));
    const size_t addr_bytes = ac == 2 ? 8 : 4; // fdt_cells accepts 1 or 2 cells only
    const size_t size_bytes = sc == 2 ? 8 : 4;
    if (reg == nullptr || len < 0 || static_cast<size_t>(len) < addr_bytes + size_bytes)
        return false;
    const uint64_t base = ac == 2 ? get_be64(reg) : get_be32(reg);
    const uint64_t size = sc == 2 ? get_be64(reg + addr_bytes) : get_be32(reg + addr_bytes);
    return make_range(base, size, out);
}

int fdt_next_virtio_mmio(const void* fdt, int prev, Range* window) {
    for (int dev = fdt_node_offset_by_compatible(fdt, prev, "virtio,mmio"); dev >= 0;
         dev = fdt_node_offset_by_compatible(fdt, dev, "virtio,mmio")) {
        int len = 0;
        const auto* reg = static_cast<const uint8_t*>(fdt_getprop(fdt, dev, "reg", &len));
        if (reg == nullptr || len != 16)
            continue;
        *window = Range{get_be64(reg), get_be64(reg + 8)};
        return dev;
    }
    return -FDT_ERR_NOTFOUND;
}

int fdt_reserved_memory(const void* fdt, Range* out, int max) {
    const int rm = fdt_path_offset(fdt, "/reserved-memory");
    if (rm == -FDT_ERR_NOTFOUND)
        return 0;
    int ac = 0;
    int sc = 0;
    if (rm < 0 || !fdt_cells(fdt, rm, &ac, &sc))
        return -1;
    const size_t addr_bytes = ac == 2 ? 8 : 4;
    const size_t size_bytes = sc == 2 ? 8 : 4;
    int count = 0;
    for (int node = fdt_first_subnode(fdt, rm); node >= 0; node = fdt_next_subnode(fdt, node)) {
        int len = 0;
        const auto* reg = static_cast<const uint8_t*>(fdt_getprop(fdt, node, "reg", &len));
        if (reg == nullptr)
            continue; // placed by the kernel ("size" only): no fixed range yet
        if (len < 0 || static_cast<size_t>(len) != addr_bytes + size_bytes || count >= max)
            return -1;
        const uint64_t base = ac == 2 ? get_be64(reg) : get_be32(reg);
        const uint64_t size = sc == 2 ? get_be64(reg + addr_bytes) : get_be32(reg + addr_bytes);
        if (!make_range(base, size, &out[count]))
            return -1;
        ++count;
    }
    return count;
}

} // namespace svmkit::guest
