#include "guest/of_flatten.h"

#include "guest/fdt_util.h"

namespace svmkit::guest {

const char* of_flatten_message(OfFlattenError e) {
    switch (e) {
    case OfFlattenError::none:
        return "no error";
    case OfFlattenError::no_root:
        return "the firmware names no root node (peer of 0)";
    case OfFlattenError::call_failed:
        return "a client call (peer, child or nextprop) failed";
    case OfFlattenError::too_deep:
        return "nodes nested deeper than 16 levels";
    case OfFlattenError::too_many_nodes:
        return "more than 4096 nodes (or the firmware's links loop)";
    case OfFlattenError::too_many_props:
        return "more than 512 properties in a node (or nextprop loops)";
    case OfFlattenError::bad_path:
        return "package-to-path failed, is too long, or is not below the parent's path";
    case OfFlattenError::bad_node_name:
        return "a node's unit name is empty or has a character a device tree cannot hold";
    case OfFlattenError::bad_property_name:
        return "nextprop returned an empty, unterminated or unprintable property name";
    case OfFlattenError::bad_property_length:
        return "getproplen failed or returned more than 256 KiB";
    case OfFlattenError::property_changed:
        return "getprop returned another length than getproplen";
    case OfFlattenError::duplicate_property:
        return "a node lists a property twice";
    case OfFlattenError::no_space:
        return "the tree does not fit its buffer";
    case OfFlattenError::invalid_tree:
        return "the flattened tree does not pass fdt_check_full";
    }
    return "unknown error";
}

namespace {

bool printable(char c) {
    return c > ' ' && c < 0x7f;
}

} // namespace

OfFlattenError of_accept_path(OfWalk& w, int depth, int32_t len, uint32_t* name_at) {
    if (len <= 0 || static_cast<uint32_t>(len) >= kOfMaxPath)
        return OfFlattenError::bad_path;
    const auto n = static_cast<uint32_t>(len);
    // Firmware may or may not count or write the NUL: the path is exactly
    // `len` bytes, none of them NUL.
    w.next_path[n] = '\0';
    if (memchr(w.next_path, 0, n) != nullptr || w.next_path[0] != '/')
        return OfFlattenError::bad_path;
    if (depth == 0) {
        if (n != 1)
            return OfFlattenError::bad_path;
        memcpy(w.path, w.next_path, n + 1);
        w.path_len[0] = 1;
        *name_at = 1;
        return OfFlattenError::none;
    }
    // parent + "/" + unit name; the root's path is "/" alone.
    const uint32_t parent = w.path_len[depth - 1];
    const uint32_t at = parent == 1 ? 1 : parent + 1;
    if (n <= at || memcmp(w.next_path, w.path, parent) != 0 || w.next_path[at - 1] != '/')
        return OfFlattenError::bad_path;
    for (uint32_t i = at; i < n; ++i)
        if (!printable(w.next_path[i]) || w.next_path[i] == '/')
            return OfFlattenError::bad_node_name;
    memcpy(w.path, w.next_path, n + 1);
    w.path_len[depth] = n;
    *name_at = at;
    return OfFlattenError::none;
}

bool of_property_name_ok(const OfWalk& w) {
    const void* nul = memchr(w.name, 0, kOfPropNameBuf);
    if (nul == nullptr || w.name[0] == '\0')
        return false;
    for (const char* c = w.name; *c != '\0'; ++c)
        if (!printable(*c))
            return false;
    return true;
}

OfFlattenError of_check_tree(const void* fdt, OfFlattenResult* r) {
    const int err = fdt_check_full_strict(fdt, fdt_totalsize(fdt));
    if (err < 0) {
        r->error = OfFlattenError::invalid_tree;
        r->fdt_err = err;
        return r->error;
    }
    int node = -1;
    int depth = 0;
    // Past the root's end the depth goes negative (and the offset does not).
    while ((node = fdt_next_node(fdt, node, &depth)) >= 0 && depth >= 0) {
        int prop = 0;
        fdt_for_each_property_offset(prop, fdt, node) {
            const char* name = nullptr;
            int len = 0;
            fdt_getprop_by_offset(fdt, prop, &name, &len);
            for (int later = fdt_next_property_offset(fdt, prop); later >= 0;
                 later = fdt_next_property_offset(fdt, later)) {
                const char* other = nullptr;
                fdt_getprop_by_offset(fdt, later, &other, &len);
                if (name != nullptr && other != nullptr && strcmp(name, other) == 0) {
                    r->error = OfFlattenError::duplicate_property;
                    if (fdt_get_path(fdt, node, r->path, sizeof r->path) < 0)
                        r->path[0] = '\0';
                    return r->error;
                }
            }
        }
    }
    return OfFlattenError::none;
}

namespace {

// Offsets move as properties grow: /rtas is looked up for each. (No table of
// names: an array of pointers would need relocations in the stub.)
int set_rtas_u32(void* fdt, const char* name, uint32_t value) {
    const int rtas = fdt_path_offset(fdt, "/rtas");
    return rtas < 0 ? rtas : fdt_setprop_u32(fdt, rtas, name, value);
}

} // namespace

int of_finish_tree(void* fdt, uint32_t bufsize, uint32_t rtas_base, uint32_t rtas_entry,
                   uint32_t rtas_size) {
    int err = fdt_open_into(fdt, fdt, static_cast<int>(bufsize));
    if (err < 0)
        return err;
    if (rtas_size != 0 && ((err = set_rtas_u32(fdt, "linux,rtas-base", rtas_base)) < 0 ||
                           (err = set_rtas_u32(fdt, "linux,rtas-entry", rtas_entry)) < 0 ||
                           (err = set_rtas_u32(fdt, "rtas-size", rtas_size)) < 0))
        return err;
    constexpr int kMaxReserved = 16;
    Range reserved[kMaxReserved];
    const int n = fdt_reserved_memory(fdt, reserved, kMaxReserved);
    if (n < 0)
        return -FDT_ERR_BADVALUE;
    for (int i = 0; i < n; ++i)
        if ((err = fdt_add_mem_rsv(fdt, reserved[i].base, reserved[i].size)) < 0)
            return err;
    return fdt_pack(fdt);
}

} // namespace svmkit::guest
