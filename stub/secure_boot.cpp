// The stub's second run: resumed by the ultravisor, secure, on a verified
// image. Unpacks the kernel, places the initrd, shares the bounce pool,
// describes it in the FDT and enters the kernel kexec-style. (And the same
// without the bounce pool for a ppc64le boot without svm=on.)
#include "stub/stub.h"

#include "guest/cmdline.h"
#include "guest/fdt_util.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::stub {

namespace {

// Linux's restricted-dma-pool needs at least this much; svmkit build
// enforces the same minimum (format/manifest.hpp kMinSwiotlbSize).
constexpr uint64_t kMinPoolSize = 1u << 20;

// At least Linux's minimum, rounded up to whole pages.
uint64_t checked_pool_size(Stub& s, uint64_t size) {
    if (!align_up(size, kPageSize, &size) || size < kMinPoolSize)
        s.fatal("the bounce pool must be at least 1 MiB");
    return size;
}

void check(Stub& s, int err, const char* what) {
    if (err >= 0)
        return;
    s.say("error: ").str(what).str(": ").str(fdt_error_name(err));
    s.con.nl();
    s.stop();
}

int chosen(Stub& s, void* fdt) {
    const int node = fdt_path_offset(fdt, "/chosen");
    check(s, node, "/chosen");
    return node;
}

// Points /chosen at the initrd where it lies, inside the image: the
// ultravisor checked its digest right there (and it is secure memory now), the
// kernel's load range never overlaps the image (reserve_fixed), and Linux
// keeps the initrd range reserved until it has unpacked it, whatever it does
// with the rest of the image's memory. Copying it out would cost a pass over
// every byte (and fresh pages) for nothing.
void place_initrd(Stub& s, void* fdt) {
    if (!s.manifest.get(ComponentId::initrd).present) {
        // Nothing before ESM can add one: the properties are the stub's own.
        fdt_delprop(fdt, chosen(s, fdt), "linux,initrd-start");
        fdt_delprop(fdt, chosen(s, fdt), "linux,initrd-end");
        return;
    }
    const Range at = s.placed(ComponentId::initrd);
    check(s, fdt_setprop_u64(fdt, chosen(s, fdt), "linux,initrd-start", at.base),
          "linux,initrd-start");
    check(s, fdt_setprop_u64(fdt, chosen(s, fdt), "linux,initrd-end", at.end()),
          "linux,initrd-end");
    s.say("initrd ").dec(at.size).str(" bytes in place at ").hex(at.base).nl();
    s.calls.trace(SVMKIT_TRACE_INITRD, at.base, at.end());
}

// The bounce pool's size: the manifest's swiotlb-size, or
// `svmkit.swiotlb=<bytes>` (K/M/G suffixes) from the signed command line;
// rounded up to 64 KiB. `swiotlb=` is Linux's own parameter (slabs, areas,
// force/noforce): never read for the pool, never a reason to stop; a value
// that looks like the size svmkit once took there gets a note, so an image
// signed with the old spelling says why its pool is the manifest's size.
uint64_t pool_size(Stub& s) {
    uint64_t size = s.manifest.swiotlb_size;
    if (!s.manifest.get(ComponentId::cmdline).present)
        return checked_pool_size(s, size);
    const Range cmdline = s.placed(ComponentId::cmdline);
    const char* text = gpa_ptr<const char>(cmdline.base);
    const char* value = nullptr;
    size_t len = 0;
    if (cmdline_param(text, cmdline.size, "svmkit.swiotlb", &value, &len)) {
        if (!parse_size(value, len, &size))
            s.fatal("svmkit.swiotlb= on the command line is not a size (bytes, with an "
                    "optional K, M or G suffix)");
        return checked_pool_size(s, size);
    }
    uint64_t linux_value = 0;
    if (cmdline_param(text, cmdline.size, "swiotlb", &value, &len) &&
        parse_size(value, len, &linux_value)) {
        s.say("note: swiotlb=")
            .write(value, len)
            .str(" is Linux's parameter (a count of 2 KiB slabs), not the pool's size; the "
                 "pool keeps the manifest's size (svmkit.swiotlb= sets it)")
            .nl();
    }
    return checked_pool_size(s, size);
}

// Reserves the bounce pool and shares it with the hypervisor (UV_SHARE_PAGE):
// the only guest memory devices may reach.
Range share_bounce_pool(Stub& s, RegionAllocator& alloc) {
    Range pool;
    if (!alloc.allocate(pool_size(s), kPageSize, &pool))
        s.fatal("no room for the bounce pool");
    const long rc = s.calls.ucall(UV_SHARE_PAGE, pool.base >> kPageShift, pool.size >> kPageShift);
    if (rc != U_SUCCESS) {
        s.say("error: UV_SHARE_PAGE of the bounce pool failed: ").sdec(rc).nl();
        s.stop();
    }
    s.say("bounce pool ").hex(pool.base).str("..").hex(pool.end()).str(" shared (");
    s.con.dec(pool.size >> kPageShift).str(" pages)").nl();
    return pool;
}

// "svmkit-bounce-pool@<base in hex>"
void pool_node_name(uint64_t base, char (&name)[40]) {
    const char prefix[] = "svmkit-bounce-pool@";
    size_t n = sizeof(prefix) - 1;
    memcpy(name, prefix, n);
    char digits[20];
    for (size_t d = format_hex(base, digits); d < sizeof digits; ++d)
        name[n++] = digits[d];
    name[n] = '\0';
}

// /reserved-memory/svmkit-bounce-pool@<base>: compatible = "restricted-dma-pool",
// reg = <base size> (2 + 2 cells), a phandle that every virtio device's
// memory-region points at; /chosen records that virtio devices must offer
// VIRTIO_F_ACCESS_PLATFORM. Returns the number of virtio device nodes.
int describe_pool(Stub& s, void* fdt, const Range& pool) {
    int rm = fdt_path_offset(fdt, "/reserved-memory");
    if (rm == -FDT_ERR_NOTFOUND) {
        rm = fdt_add_subnode(fdt, 0, "reserved-memory");
        check(s, rm, "/reserved-memory");
        check(s, fdt_setprop_u32(fdt, rm, "#address-cells", 2), "/reserved-memory");
        check(s, fdt_setprop_u32(fdt, rm, "#size-cells", 2), "/reserved-memory");
        check(s, fdt_setprop(fdt, rm, "ranges", nullptr, 0), "/reserved-memory");
    } else {
        check(s, rm, "/reserved-memory");
        int ac = 0;
        int sc = 0;
        if (!fdt_cells(fdt, rm, &ac, &sc) || ac != 2 || sc != 2 ||
            fdt_getprop(fdt, rm, "#size-cells", nullptr) == nullptr)
            s.fatal("/reserved-memory must have #address-cells = <2> and #size-cells = <2>");
    }
    char name[40];
    pool_node_name(pool.base, name);
    const int node = fdt_add_subnode(fdt, rm, name);
    check(s, node, "the bounce pool node");
    check(s, fdt_setprop_string(fdt, node, "compatible", "restricted-dma-pool"),
          "the bounce pool node");
    uint8_t reg[16];
    put_be64(reg, pool.base);
    put_be64(reg + 8, pool.size);
    check(s, fdt_setprop(fdt, node, "reg", reg, sizeof reg), "the bounce pool node");
    uint32_t phandle = 0;
    check(s, fdt_generate_phandle(fdt, &phandle), "a phandle for the bounce pool");
    check(s, fdt_setprop_u32(fdt, node, "phandle", phandle), "the bounce pool node");

    int devices = 0;
    for (int dev = fdt_node_offset_by_compatible(fdt, -1, "virtio,mmio"); dev >= 0;
         dev = fdt_node_offset_by_compatible(fdt, dev, "virtio,mmio")) {
        check(s, fdt_setprop_u32(fdt, dev, "memory-region", phandle), "memory-region");
        ++devices;
    }
    // Without VIRTIO_F_ACCESS_PLATFORM a device bypasses the DMA API and so the
    // bounce pool, and could only work on secure memory it cannot read: the
    // kernel must refuse such devices (docs/platform.md).
    check(s, fdt_setprop(fdt, chosen(s, fdt), "svmkit,virtio-require-access-platform", nullptr, 0),
          "/chosen");
    return devices;
}

// Removes every restricted-dma-pool under /reserved-memory, and the virtio
// devices' memory-region references to it, from the stub's copy of a device
// tree a kexec'ing secure kernel handed over: that kernel's bounce pool, its
// pages unshared now.
void drop_previous_pools(Stub& s, void* fdt) {
    for (;;) {
        const int rm = fdt_path_offset(fdt, "/reserved-memory");
        if (rm < 0)
            return;
        int pool = -FDT_ERR_NOTFOUND;
        for (int n = fdt_first_subnode(fdt, rm); n >= 0 && pool < 0; n = fdt_next_subnode(fdt, n))
            if (fdt_node_check_compatible(fdt, n, "restricted-dma-pool") == 0)
                pool = n;
        if (pool < 0)
            return;
        int name_len = 0;
        const char* name = fdt_get_name(fdt, pool, &name_len);
        s.say("dropping the previous kernel's bounce pool node ");
        s.con.write(name, name_len > 0 ? static_cast<size_t>(name_len) : 0).nl();
        const uint32_t phandle = fdt_get_phandle(fdt, pool);
        for (int dev = fdt_node_offset_by_compatible(fdt, -1, "virtio,mmio"); dev >= 0;
             dev = fdt_node_offset_by_compatible(fdt, dev, "virtio,mmio")) {
            int len = 0;
            const void* ref = fdt_getprop(fdt, dev, "memory-region", &len);
            if (ref != nullptr && len == 4 && phandle != 0 && get_be32(ref) == phandle)
                check(s, fdt_delprop(fdt, dev, "memory-region"), "memory-region");
        }
        check(s, fdt_del_node(fdt, pool), "the previous bounce pool node");
    }
}

// From a device tree of the stub's own making to the kernel: unpack, place,
// (when secure) share and describe the bounce pool, enter kexec-style. `fdt`
// is the tree at `fdt_gpa`, checked by the caller: our own, but written while
// the hypervisor could reach it (after ESM it lies in secure memory, where it
// stays as checked).
[[noreturn]] void boot_from_fdt(Stub& s, uint64_t fdt_gpa, void* fdt, bool secure) {
    RegionAllocator alloc(ram_from_fdt(s, fdt));
    reserve_fixed(s, alloc, fdt, fdt_gpa);

    unpack_kernel(s, alloc, s.manifest.get(ComponentId::kernel).load_address);
    place_initrd(s, fdt);
    if (secure) {
        const Range pool = share_bounce_pool(s, alloc);
        const int devices = describe_pool(s, fdt, pool);
        s.say("restricted-dma-pool described for ").dec(static_cast<uint64_t>(devices));
        s.con.str(" virtio device(s)").nl();
    }

    Range stack;
    if (!alloc.allocate(kKernelStackSize, kPageSize, &stack))
        s.fatal("no room for the kernel's stack");
    check(s, fdt_add_mem_rsv(fdt, stack.base, stack.size), "reserving the kernel's stack");

    const ComponentView& k = s.manifest.get(ComponentId::kernel);
    if (k.entry_offset >= k.memory_size)
        s.fatal("the kernel's entry point lies outside its image");
    const uint64_t entry = k.load_address + k.entry_offset;
    s.say("entering the kernel at ").hex(entry).str(" (r3 = fdt ").hex(fdt_gpa).str(")").nl();
    s.calls.trace(SVMKIT_TRACE_KERNEL_ENTRY, entry, fdt_gpa, stack.end());
    // kexec-style, as Linux's ppc64 entry expects it: r3 = FDT, r4 = the
    // kernel's physical start, r5 = 0 (no Open Firmware).
    enter_kernel(s, entry, fdt_gpa, k.load_address, stack.end());
}

// Entered secure by a kernel that kexec'd this image (no resume mark). The
// ultravisor verified this VM once, at its first image; the kernel that
// loaded this one answers for it, as a secure Linux does for what it kexecs.
// Nothing a previous kernel shared may stay shared: that kernel unshared
// everything before its jump (as Linux's kexec does), and the stub asks once
// more, so that no page this kernel takes for private memory is still
// visible to the hypervisor. The previous kernel's device tree still
// describes its bounce pool (kexec-tools copies the tree as it was): those
// nodes go, and this stub shares and describes a pool of its own.
[[noreturn]] void boot_secure_kexec(Stub& s, uint64_t given_fdt) {
    s.say("entered secure by a kexec (MSR[S] set, no UV_ESM of this image): the ultravisor ");
    s.con.str("verified this VM at its first image; the kernel that loaded this one answers for it")
        .nl();
    const long rc = s.calls.ucall(UV_UNSHARE_ALL_PAGES);
    if (rc != U_SUCCESS) {
        s.say("error: UV_UNSHARE_ALL_PAGES failed: ").sdec(rc).str(" (");
        s.con.str(svmkit_uv_code_name(rc)).str(")").nl();
        s.stop();
    }
    s.say("UV_UNSHARE_ALL_PAGES: nothing a previous kernel shared stays shared").nl();
    const uint64_t fdt = prepare_fdt(s, given_fdt);
    drop_previous_pools(s, gpa_ptr<void>(fdt));
    boot_from_fdt(s, fdt, checked_fdt(s, fdt, "built for the kernel"), true);
}

} // namespace

void boot_secure(Stub& s, uint64_t fdt_gpa) {
    void* fdt = checked_fdt(s, fdt_gpa, "given at the secure entry");
    const int node = fdt_path_offset(fdt, "/chosen");
    uint64_t marked = 0;
    if (node >= 0 && fdt_read_u64_exact(fdt, node, kEsmResumeMark, &marked)) {
        if (marked != s.kbase) {
            s.say("error: the device tree marks a UV_ESM of the image at ").hex(marked);
            s.con.str(", not of this one at ").hex(s.kbase).nl();
            s.stop();
        }
        // The kernel must never see the mark: a device tree it hands on to
        // a kexec'd image would pass for an ultravisor's resume.
        check(s, fdt_delprop(fdt, node, kEsmResumeMark), kEsmResumeMark);
        s.say("resumed secure by the ultravisor").nl();
        boot_from_fdt(s, fdt_gpa, fdt, true);
    }
    boot_secure_kexec(s, fdt_gpa);
}

void boot_insecure(Stub& s, uint64_t platform_fdt) {
    s.say(svm_refused(s) ? "svm=off is on the signed command line"
                         : "svm=on is not on the signed command line")
        .str(": booting without secure mode; nothing verified this image")
        .nl();
    const uint64_t fdt = prepare_fdt(s, platform_fdt);
    boot_from_fdt(s, fdt, checked_fdt(s, fdt, "built for the kernel"), false);
}

} // namespace svmkit::stub
