// The sample guest kernel: what the stub boots on the simulated platform.
//
// A stand-in for Linux that checks what the stub promised: it runs secure,
// the FDT is well formed and carries the signed command line, the initrd, a
// restricted-dma-pool bounce pool that every virtio device points at, and the
// requirement that virtio devices offer VIRTIO_F_ACCESS_PLATFORM. It stores a
// secret canary in private (secure) memory, prints a summary and exits
// through the platform's exit hypercall with a status (0 = every check passed).
//
// Entered kexec-style as a C call (guest/gates.h): r3 = FDT, r4 = the
// kernel's physical start, r5 = 0.
#include "guest/cmdline.h"
#include "guest/console.h"
#include "guest/fdt_util.h"
#include "guest/hcall.h"
#include "guest/memory.h"
#include "guest/sha2.h"
#include "samples/kernel/esm_secret.h"
#include "samples/kernel/io_workload.h"
#include "samples/kernel/uv_misuse.h"

#include <libfdt.h>
#include <string.h>

using namespace svmkit::guest;

// Linker-script symbols (kernel.lds.S); hidden: PC-relative, no GOT. The
// names follow the linker's reserved convention on purpose.
// NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)
extern "C" __attribute__((visibility("hidden"))) const uint8_t __kernel_start[];
extern "C" __attribute__((visibility("hidden"))) const uint8_t __kernel_end[];
// NOLINTEND(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp)

namespace {

// Exit statuses (documented in docs/platform.md).
enum Status : uint64_t {
    kOk = 0,
    kNotSecure = 10, // MSR[S] clear: the stub entered us without ESM
    kBadEntry = 11,  // r4/r5 not as the entry convention says
    kBadFdt = 12,    // no valid device tree in r3
    kBadChosen = 13, // /chosen lacks bootargs or the virtio requirement
    kBadInitrd = 14, // linux,initrd-start/end missing or wrong
    kBadPool = 15,   // no usable restricted-dma-pool
    kBadVirtio = 16, // a virtio device does not point at the pool
};

// The canary: SHA-256 of this text, computed here at run time, so its bytes
// appear nowhere in the image and only in this kernel's private memory. A
// test playing the hypervisor searches every page it can read for them.
constexpr char kCanarySeed[] = "svmkit sample kernel secret canary";
alignas(64) uint8_t g_canary[32]; // .bss: private memory
constexpr char kPoolMarker[] = "svmkit sample kernel: public bytes in the shared pool";

struct Kernel {
    Calls calls;
    Console con;
    explicit Kernel(const svmkit_gates* g) : calls(g), con(calls) {}

    Console& say(const char* s) { return con.str("svmkit sample kernel: ").str(s); }
    [[noreturn]] void fail(Status status, const char* why) {
        say("FAILED: ").str(why).str(" (status ").dec(status).str(")").nl();
        calls.exit(status);
    }
};

struct Pool {
    Range range;
    uint32_t phandle = 0;
};

Pool check_pool(Kernel& k, const void* fdt, const char* bootargs, int bootargs_len) {
    const int rm = fdt_path_offset(fdt, "/reserved-memory");
    int ac = 0;
    int sc = 0;
    if (rm < 0 || !fdt_cells(fdt, rm, &ac, &sc) || ac != 2 || sc != 2)
        k.fail(kBadPool, "no /reserved-memory with #address-cells = #size-cells = 2");
    const int node = fdt_node_offset_by_compatible(fdt, rm, "restricted-dma-pool");
    if (node < 0 || fdt_parent_offset(fdt, node) != rm)
        k.fail(kBadPool, "no restricted-dma-pool under /reserved-memory");
    int len = 0;
    const void* reg = fdt_getprop(fdt, node, "reg", &len);
    Pool pool;
    if (reg == nullptr || len != 16 ||
        !make_range(get_be64(reg), get_be64(static_cast<const uint8_t*>(reg) + 8), &pool.range))
        k.fail(kBadPool, "the pool's reg is not <base size> in 2 + 2 cells");
    if (pool.range.size < (1u << 20) || pool.range.base % kPageSize != 0 ||
        pool.range.size % kPageSize != 0)
        k.fail(kBadPool, "the pool is smaller than 1 MiB or not 64 KiB aligned");
    const Range self{ptr_gpa(__kernel_start), ptr_gpa(__kernel_end) - ptr_gpa(__kernel_start)};
    if (pool.range.overlaps(self))
        k.fail(kBadPool, "the pool overlaps the kernel");
    pool.phandle = fdt_get_phandle(fdt, node);
    if (pool.phandle == 0)
        k.fail(kBadPool, "the pool has no phandle");
    // A `svmkit.swiotlb=` on the signed command line sets the pool's size
    // (`swiotlb=` is Linux's own parameter, no business of the pool's).
    const char* value = nullptr;
    size_t value_len = 0;
    uint64_t want = 0;
    if (cmdline_param(bootargs, static_cast<size_t>(bootargs_len), "svmkit.swiotlb", &value,
                      &value_len) &&
        parse_size(value, value_len, &want) && align_up(want, kPageSize, &want) &&
        want != pool.range.size)
        k.fail(kBadPool, "the pool's size is not the svmkit.swiotlb= of the command line");
    return pool;
}

int check_virtio(Kernel& k, const void* fdt, uint32_t phandle) {
    int devices = 0;
    for (int dev = fdt_node_offset_by_compatible(fdt, -1, "virtio,mmio"); dev >= 0;
         dev = fdt_node_offset_by_compatible(fdt, dev, "virtio,mmio")) {
        int len = 0;
        const void* p = fdt_getprop(fdt, dev, "memory-region", &len);
        if (p == nullptr || len != 4 || get_be32(p) != phandle)
            k.fail(kBadVirtio, "a virtio device's memory-region is not the bounce pool");
        ++devices;
    }
    return devices;
}

Range check_initrd(Kernel& k, const void* fdt, int chosen) {
    uint64_t start = 0;
    uint64_t end = 0;
    if (!fdt_read_u64(fdt, chosen, "linux,initrd-start", &start) ||
        !fdt_read_u64(fdt, chosen, "linux,initrd-end", &end))
        return Range{};
    Range ram;
    if (end < start || !fdt_first_memory(fdt, &ram) || !ram.contains(Range{start, end - start}))
        k.fail(kBadInitrd, "the initrd range lies outside memory");
    return Range{start, end - start};
}

} // namespace

extern "C" [[noreturn]] __attribute__((used, section(".text.entry"))) void
svmkit_sample_kernel_entry(uint64_t r3, uint64_t r4, uint64_t r5, const svmkit_gates* gates) {
    Kernel k(gates);
    k.say("hello from the guest kernel").nl();
    const bool secure = k.calls.secure();
    if (secure)
        k.say("running secure (MSR[S] set)").nl();
    if (r5 != 0 || r4 != ptr_gpa(__kernel_start))
        k.fail(kBadEntry, "entered with r4 != the kernel's start or r5 != 0");

    const void* fdt = gpa_ptr<const void>(r3);
    if (r3 % 8 != 0 || fdt_magic(fdt) != FDT_MAGIC || fdt_totalsize(fdt) > (2u << 20) ||
        svmkit::guest::fdt_check_full_strict(fdt, fdt_totalsize(fdt)) != 0)
        k.fail(kBadFdt, "no valid device tree in r3");
    const int chosen = fdt_path_offset(fdt, "/chosen");
    int bootargs_len = 0;
    const char* bootargs =
        chosen >= 0 ? fdt_read_string(fdt, chosen, "bootargs", &bootargs_len) : nullptr;
    if (bootargs == nullptr)
        k.fail(kBadChosen, "/chosen has no bootargs");
    k.say("bootargs \"").write(bootargs, static_cast<size_t>(bootargs_len)).str("\"").nl();
    // A command line asking for secure mode (svm=on) must find the kernel
    // secure; without it the stub boots the kernel as a normal VM.
    const char* svm = nullptr;
    size_t svm_len = 0;
    const bool svm_on =
        cmdline_param(bootargs, static_cast<size_t>(bootargs_len), "svm", &svm, &svm_len) &&
        svm_len == 2 && svm[0] == 'o' && svm[1] == 'n';
    if (!secure && svm_on) {
        k.say("NOT SECURE: MSR[S] is clear although the command line has svm=on").nl();
        k.calls.exit(kNotSecure);
    }
    if (!secure)
        k.say("running as a normal (not secure) VM: no svm=on on the command line").nl();

    const Range initrd = check_initrd(k, fdt, chosen);
    Pool pool;
    int devices = 0;
    if (secure) {
        if (fdt_getprop(fdt, chosen, "svmkit,virtio-require-access-platform", nullptr) == nullptr)
            k.fail(kBadChosen, "/chosen does not require VIRTIO_F_ACCESS_PLATFORM");
        pool = check_pool(k, fdt, bootargs, bootargs_len);
        if (initrd.overlaps(pool.range))
            k.fail(kBadInitrd, "the initrd overlaps the bounce pool");
        devices = check_virtio(k, fdt, pool.phandle);
        // Public bytes in the shared pool: the hypervisor must see these (a
        // test playing the hypervisor looks for them), unlike the canary below.
        memcpy(gpa_ptr(pool.range.base), kPoolMarker, sizeof kPoolMarker - 1);
    }

    sha2(HashAlgorithm::sha256, kCanarySeed, sizeof kCanarySeed - 1, g_canary);
    // Keep the store: nothing in this program reads the canary back.
    asm volatile("" : : "r"(g_canary) : "memory");

    k.say("secure=").str(secure ? "yes" : "no").str(" fdt=ok bootargs=ok initrd=").dec(initrd.size);
    k.con.str(" bytes pool=").hex(pool.range.base).str("+").hex(pool.range.size);
    k.con.str(" virtio=").dec(static_cast<uint64_t>(devices)).str(" canary=stored at ");
    k.con.hex(ptr_gpa(g_canary)).str(" status=0").nl();

    // svmkit.uv_misuse=1: ultracalls the ultravisor must refuse (uv_misuse.h).
    if (svmkit::sample::uv_misuse_requested(bootargs, bootargs_len)) {
        Range ram;
        (void)fdt_first_memory(fdt, &ram); // none: every "past RAM" call is still wrong
        const svmkit::sample::UvMisuseContext misuse{.calls = &k.calls,
                                                     .con = &k.con,
                                                     .secure = secure,
                                                     .fdt = r3,
                                                     .ram = ram,
                                                     .pool = pool.range,
                                                     .private_gpa = ptr_gpa(g_canary)};
        if (!svmkit::sample::run_uv_misuse(misuse))
            k.calls.exit(svmkit::sample::kUvMisuseUnexpected);
    }

    // svmkit.secret_file=NAME: a secret file of the ibm,esm blob (esm_secret.h).
    if (!svmkit::sample::read_esm_secret_file(k.calls, k.con, bootargs, bootargs_len))
        k.calls.exit(svmkit::sample::kEsmSecretFailed);

    svmkit::sample::IoContext io;
    io.calls = &k.calls;
    io.con = &k.con;
    io.fdt = fdt;
    io.bootargs = bootargs;
    io.bootargs_len = bootargs_len;
    io.secure = secure;
    io.pool = pool.range;
    io.canary = g_canary;
    const uint64_t io_status = svmkit::sample::run_io_workload(io);
    if (io_status != svmkit::sample::kIoOk) {
        k.say("I/O workload ended with status ").dec(io_status).nl();
        k.calls.exit(io_status);
    }
    k.calls.exit(kOk);
}
