// Flattening an Open Firmware device tree into an FDT through the client
// interface, as Linux's prom_init does before it leaves the firmware: each
// node's unit name (the last component of package-to-path), every property
// (nextprop, getproplen, getprop), a "phandle" property holding the node's
// Open Firmware phandle where the node has none (references between nodes
// are phandles), children and peers in the firmware's order; then the boot
// CPU in the header, the reserve map, and the RTAS instance in /rtas.
//
// Everything the firmware answers is untrusted input, checked where it is
// read: every length against the buffer it was read into, paths against
// their parent's, depth, node and property counts bounded (a firmware whose
// peer or child links loop stops at a bound), and the result checked whole
// with fdt_check_full plus a duplicate-property check. A failure names the
// problem and the node's path.
//
// The walk is a template over the client (`Of`) so that the stub's Open
// Firmware (guest/of_client_ppc64le.h) and host tests' fake trees share it;
// the stub cannot use virtual calls (a vtable would be writable data).
#pragma once

#include "guest/memory.h"
#include "guest/of_client_ppc64le.h" // kOfInvalid

#include <libfdt.h>
#include <stdint.h>
#include <string.h>

namespace svmkit::guest {

// What a failed flattening ran into (of_flatten_message has each one's text).
enum class OfFlattenError {
    none,
    no_root,             // peer(0) named no root node
    call_failed,         // peer, child or nextprop failed
    too_deep,            // nodes nested deeper than kOfMaxDepth
    too_many_nodes,      // more than kOfMaxNodes (or the firmware's links loop)
    too_many_props,      // more than kOfMaxProps in one node (or nextprop loops)
    bad_path,            // package-to-path failed, too long, or not below the parent's path
    bad_node_name,       // an empty unit name or a character a device tree cannot hold
    bad_property_name,   // nextprop returned no NUL-terminated, printable name
    bad_property_length, // getproplen failed or is larger than kOfMaxPropLen
    property_changed,    // getprop returned another length than getproplen
    duplicate_property,  // a node lists one property twice
    no_space,            // the tree does not fit the buffer
    invalid_tree,        // the result does not pass fdt_check_full
};

const char* of_flatten_message(OfFlattenError e);

inline constexpr int kOfMaxDepth = 16;
inline constexpr uint32_t kOfMaxNodes = 4096;
inline constexpr uint32_t kOfMaxProps = 512;
inline constexpr int32_t kOfMaxPropLen = 256 << 10;
// Path buffer (package-to-path); IEEE 1275 names have at most 31 characters.
inline constexpr uint32_t kOfMaxPath = 256;
inline constexpr uint32_t kOfPropNameBuf = 64;

struct OfFlattenResult {
    OfFlattenError error = OfFlattenError::none;
    int fdt_err = 0;         // libfdt's error when it refused (no_space, invalid_tree)
    char path[kOfMaxPath]{}; // the node it stopped at (empty when none)
    uint32_t nodes = 0;
    uint32_t props = 0;
};

// The walk's state: the path of each open node (parent prefixes), a scratch
// for the next path and property names.
struct OfWalk {
    uint32_t stack[kOfMaxDepth]{};
    uint32_t path_len[kOfMaxDepth]{};
    char path[kOfMaxPath]{};
    char next_path[kOfMaxPath + 1]{};
    char prev_name[kOfPropNameBuf + 1]{};
    char name[kOfPropNameBuf + 1]{};
};

// Checks the path the firmware gave for the node at `depth` (in
// w.next_path, `len` bytes) against its parent's and makes it the current
// path; the unit name's offset in w.path in *name_at.
OfFlattenError of_accept_path(OfWalk& w, int depth, int32_t len, uint32_t* name_at);
// Checks the property name in w.name (NUL within the buffer, printable, not
// empty).
bool of_property_name_ok(const OfWalk& w);
// After the walk: fdt_check_full and no property twice in a node.
OfFlattenError of_check_tree(const void* fdt, OfFlattenResult* r);

namespace detail {

inline OfFlattenError of_fail(OfFlattenResult* r, const OfWalk& w, OfFlattenError e,
                              int fdt_err = 0) {
    r->error = e;
    r->fdt_err = fdt_err;
    memcpy(r->path, w.path, sizeof r->path);
    r->path[kOfMaxPath - 1] = '\0';
    return e;
}

// A node's name and properties (its children come later, from the walk).
template <class Of>
OfFlattenError of_emit_node(const Of& of, void* fdt, OfWalk& w, int depth, OfFlattenResult* r) {
    uint32_t node = w.stack[depth];
    if (++r->nodes > kOfMaxNodes)
        return of_fail(r, w, OfFlattenError::too_many_nodes);
    memset(w.next_path, 0, sizeof w.next_path);
    const int32_t len = of.package_to_path(node, w.next_path, kOfMaxPath);
    uint32_t name_at = 0;
    const OfFlattenError pe = of_accept_path(w, depth, len, &name_at);
    if (pe != OfFlattenError::none) {
        // The node has no path we accept: name its parent.
        w.path[depth > 0 ? w.path_len[depth - 1] : 0] = '\0';
        return of_fail(r, w, pe);
    }
    int err = fdt_begin_node(fdt, w.path + name_at);
    if (err < 0)
        return of_fail(r, w, OfFlattenError::no_space, err);

    bool has_phandle = false;
    w.prev_name[0] = '\0';
    for (uint32_t count = 0;; ++count) {
        memset(w.name, 0, sizeof w.name);
        const int32_t more = of.nextprop(node, w.prev_name, w.name);
        if (more == 0)
            break;
        if (more != 1)
            return of_fail(r, w, OfFlattenError::call_failed);
        if (count >= kOfMaxProps)
            return of_fail(r, w, OfFlattenError::too_many_props);
        if (!of_property_name_ok(w))
            return of_fail(r, w, OfFlattenError::bad_property_name);
        const int32_t plen = of.getproplen(node, w.name);
        if (plen < 0 || plen > kOfMaxPropLen)
            return of_fail(r, w, OfFlattenError::bad_property_length);
        void* value = nullptr;
        err = fdt_property_placeholder(fdt, w.name, plen, &value);
        if (err < 0)
            return of_fail(r, w, OfFlattenError::no_space, err);
        if (plen > 0 && of.getprop(node, w.name, value, static_cast<uint32_t>(plen)) != plen)
            return of_fail(r, w, OfFlattenError::property_changed);
        has_phandle = has_phandle || strcmp(w.name, "phandle") == 0 ||
                      strcmp(w.name, "linux,phandle") == 0 || strcmp(w.name, "ibm,phandle") == 0;
        memcpy(w.prev_name, w.name, sizeof w.prev_name);
        ++r->props;
    }
    if (!has_phandle) {
        err = fdt_property_u32(fdt, "phandle", node);
        if (err < 0)
            return of_fail(r, w, OfFlattenError::no_space, err);
    }
    return OfFlattenError::none;
}

} // namespace detail

// Writes the firmware's tree into `buf` (`size` bytes) with the reserve map
// `reserved[0..nreserved)` and the boot CPU's physical id in the header. The
// client `of` offers peer, child, nextprop, getproplen, getprop and
// package_to_path with Open Firmware's answers (see OpenFirmware).
template <class Of>
OfFlattenResult of_flatten(const Of& of, void* buf, uint32_t size, const Range* reserved,
                           int nreserved, uint32_t boot_cpu, OfWalk& w) {
    OfFlattenResult r;
    w = OfWalk{};
    int err = fdt_create(buf, static_cast<int>(size));
    for (int i = 0; err >= 0 && i < nreserved; ++i)
        err = fdt_add_reservemap_entry(buf, reserved[i].base, reserved[i].size);
    if (err >= 0)
        err = fdt_finish_reservemap(buf);
    if (err < 0) {
        detail::of_fail(&r, w, OfFlattenError::no_space, err);
        return r;
    }
    const uint32_t root = of.peer(0);
    if (root == 0 || root == kOfInvalid) {
        detail::of_fail(&r, w, OfFlattenError::no_root);
        return r;
    }
    int depth = 0;
    w.stack[0] = root;
    if (detail::of_emit_node(of, buf, w, 0, &r) != OfFlattenError::none)
        return r;
    for (;;) {
        const uint32_t child = of.child(w.stack[depth]);
        if (child == kOfInvalid) {
            detail::of_fail(&r, w, OfFlattenError::call_failed);
            return r;
        }
        if (child != 0) {
            if (depth + 1 >= kOfMaxDepth) {
                detail::of_fail(&r, w, OfFlattenError::too_deep);
                return r;
            }
            w.stack[++depth] = child;
            if (detail::of_emit_node(of, buf, w, depth, &r) != OfFlattenError::none)
                return r;
            continue;
        }
        // No child: close nodes until one has a peer.
        for (;;) {
            err = fdt_end_node(buf);
            if (err < 0) {
                detail::of_fail(&r, w, OfFlattenError::no_space, err);
                return r;
            }
            if (depth == 0) {
                err = fdt_finish(buf);
                if (err < 0) {
                    detail::of_fail(&r, w, OfFlattenError::no_space, err);
                    return r;
                }
                fdt_set_boot_cpuid_phys(buf, boot_cpu);
                w.path[0] = '\0';
                of_check_tree(buf, &r);
                return r;
            }
            const uint32_t peer = of.peer(w.stack[depth]);
            if (peer == kOfInvalid) {
                detail::of_fail(&r, w, OfFlattenError::call_failed);
                return r;
            }
            if (peer != 0) {
                w.stack[depth] = peer;
                if (detail::of_emit_node(of, buf, w, depth, &r) != OfFlattenError::none)
                    return r;
                break;
            }
            --depth;
        }
    }
}

// Completes a flattened tree in its buffer (`bufsize` bytes): the RTAS
// instance in /rtas (linux,rtas-base, linux,rtas-entry, rtas-size, as Linux
// records them; none when rtas_size is 0), the fixed ranges of
// /reserved-memory added to the reserve map (so that every placement made
// from the tree avoids them too), then the tree packed. 0, or a libfdt error
// (-FDT_ERR_BADVALUE: a malformed /reserved-memory).
int of_finish_tree(void* fdt, uint32_t bufsize, uint32_t rtas_base, uint32_t rtas_entry,
                   uint32_t rtas_size);

} // namespace svmkit::guest
