// The ppc64le stub entered firmware-style: by SLOF (QEMU's `-kernel`, or any
// IEEE 1275 firmware), r5 = the Open Firmware client interface.
//
// It does what Linux's zImage wrapper does for a pseries kernel, and no more:
// claim memory through Open Firmware, unpack the kernel to its load address
// (checking its digest), copy the initrd and the ESM blob into memory it
// claimed (the image's memory belongs to whoever loaded it: SLOF keeps it
// claimed as the "RAM kernel"), set /chosen bootargs to the signed command
// line, publish the ESM blob in /chosen (linux,esm-blob-start/end), and enter
// the kernel like a zImage: r3 = initrd, r4 = its size, r5 = the client
// interface, on the firmware's stack.
// The kernel's prom_init takes over from there. Nothing is verified on that
// path: without an ultravisor in the loop the image is whatever was loaded;
// the digest check only catches corruption.
//
// With svm=on on the signed command line the stub does not leave secure mode
// to the kernel (Debian's has no CONFIG_PPC_SVM and would run insecure): it
// does what prom_init does before UV_ESM on pseries (instantiate RTAS, find
// the boot CPU, flatten the firmware's device tree with its reserve map,
// quiesce the firmware) and continues as if entered kexec-style with that
// tree (main.cpp): UV_ESM, then the kernel entered kexec-style.
#include "stub/ppc64le/arch.h"
#include "stub/stub.h"

#include "guest/fdt_util.h"
#include "guest/of_client_ppc64le.h"
#include "guest/of_flatten.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::stub {

namespace {

// inflate's scratch memory and the NUL-terminated command line.
constexpr uint64_t kScratchSize = kInflateScratch + (256u << 10);
constexpr uint64_t k4G = 1ull << 32;
// The bottom of memory holds the real-mode exception vectors, which the
// firmware uses until the kernel takes over (SLOF keeps 0..0x4000 claimed).
// The kernel's image starts there; the zImage unpacks over them too.
constexpr uint64_t kVectorArea = 0x10000;
// Step between the addresses tried when memory must lie above a floor.
constexpr uint64_t kClaimStep = 1u << 20;

bool claim_at(const OpenFirmware& of, const Range& r) {
    return r.end() <= k4G &&
           of.claim(static_cast<uint32_t>(r.base), static_cast<uint32_t>(r.size), 0) != kOfInvalid;
}

// Memory from the firmware at or above `floor`, below 4 GiB, 1 MiB aligned.
// Everything the kernel must find after it has moved itself to its load
// address lies above that range: Linux copies itself down to it after
// prom_init, over whatever is there (the zImage wrapper moves an initrd it
// finds below the kernel's end for the same reason).
Range claim_above(Stub& s, const OpenFirmware& of, uint64_t floor, uint64_t size,
                  const char* what) {
    uint64_t rounded = 0;
    uint64_t at = 0;
    if (align_up(size, kPageSize, &rounded) && align_up(floor, kClaimStep, &at))
        for (; at < k4G && rounded <= k4G - at; at += kClaimStep)
            if (claim_at(of, Range{at, rounded}))
                return Range{at, rounded};
    s.say("error: Open Firmware has no memory for ").str(what).str(" (").dec(size);
    s.con.str(" bytes above ").hex(floor).str(")").nl();
    s.stop();
}

// Where the kernel is unpacked: its load range when Open Firmware grants it
// (SLOF's -kernel; only the exception-vector area may stay the firmware's),
// else memory above that range. A boot loader that stays resident until it
// jumps keeps part of the load range claimed (GRUB: its core image at
// 0x200000 and its heap); Linux's ppc64 kernel runs from wherever it is
// entered, through prom_init, and then moves itself to its load address, as
// when GRUB boots a plain vmlinux or the zImage wrapper unpacks it.
uint64_t claim_kernel_memory(Stub& s, const OpenFirmware& of, const Range& kernel) {
    if (claim_at(of, kernel))
        return kernel.base;
    if (kernel.base < kVectorArea && kernel.end() > kVectorArea &&
        claim_at(of, Range{kVectorArea, kernel.end() - kVectorArea})) {
        s.say("Open Firmware keeps ").hex(kernel.base).str("..").hex(kVectorArea);
        s.con.str(" (its exception vectors): the kernel is unpacked over them, as a zImage does")
            .nl();
        return kernel.base;
    }
    const Range at = claim_above(s, of, kernel.end(), kernel.size, "the kernel");
    s.say("Open Firmware cannot claim the kernel's load range ").hex(kernel.base).str("..");
    s.con.hex(kernel.end()).str(" (a boot loader holds part of it): unpacking at ").hex(at.base);
    s.con.str("; the kernel moves itself down after prom_init").nl();
    return at.base;
}

// A copy of a part of the image in claimed memory above `floor`.
Range copy_out(Stub& s, const OpenFirmware& of, uint64_t floor, const Range& from,
               const char* what) {
    const Range to = claim_above(s, of, floor, from.size, what);
    memcpy(gpa_ptr(to.base), gpa_ptr(from.base), from.size);
    return Range{to.base, from.size};
}

void set_chosen(Stub& s, const OpenFirmware& of, uint32_t chosen, const char* name,
                const void* value, uint32_t size) {
    if (!of.setprop(chosen, name, value, size)) {
        s.say("error: Open Firmware refused /chosen ").str(name).nl();
        s.stop();
    }
}

// /chosen bootargs = the signed command line, NUL-terminated (a copy in
// `scratch`: the image's has no NUL).
void set_bootargs(Stub& s, const OpenFirmware& of, uint32_t chosen, RegionAllocator& scratch) {
    const Range cmdline =
        s.manifest.get(ComponentId::cmdline).present ? s.placed(ComponentId::cmdline) : Range{};
    uint64_t size = 0;
    Range copy;
    if (!align_up(cmdline.size + 1, kPageSize, &size) || !scratch.allocate(size, kPageSize, &copy))
        s.fatal("the command line is too long");
    char* args = gpa_ptr<char>(copy.base);
    if (cmdline.size != 0)
        memcpy(args, gpa_ptr<const char>(cmdline.base), cmdline.size);
    args[cmdline.size] = '\0';
    set_chosen(s, of, chosen, "bootargs", args, static_cast<uint32_t>(cmdline.size + 1));
}

// linux,esm-blob-start/end as the Linux wrapper writes them: 32-bit cells.
void publish_esm_blob(Stub& s, const OpenFirmware& of, uint32_t chosen, const Range& blob) {
    const uint32_t start = __builtin_bswap32(static_cast<uint32_t>(blob.base));
    const uint32_t end = __builtin_bswap32(static_cast<uint32_t>(blob.end()));
    set_chosen(s, of, chosen, "linux,esm-blob-start", &start, sizeof start);
    set_chosen(s, of, chosen, "linux,esm-blob-end", &end, sizeof end);
}

// What a boot loader hands over beside the image (GRUB: its `initrd` in r3
// and r4, its `linux` arguments in /chosen bootargs) is not signed: the
// kernel gets the image's own initrd and command line, and the console says
// what was dropped.
void report_ignored_loader_input(Stub& s, const OpenFirmware& of, uint32_t chosen, uint64_t r3,
                                 uint64_t r4) {
    if (r3 != 0 && r4 != 0) {
        s.say("ignoring the loader's initrd at ").hex(r3).str(" (").dec(r4);
        s.con.str(" bytes): the kernel gets the signed one").nl();
    }
    char args[256] = {};
    const int32_t len = of.getprop(chosen, "bootargs", args, sizeof args);
    if (len > 1) {
        const auto shown =
            static_cast<size_t>(len) < sizeof args ? static_cast<size_t>(len) - 1 : sizeof args - 1;
        args[shown] = '\0';
        s.say("ignoring the loader's command line [").str(args);
        s.con.str(shown + 1 < static_cast<size_t>(len) ? "...]" : "]");
        s.con.str(": the kernel gets the signed one").nl();
    }
}

// RTAS as Linux instantiates it: rtas-size bytes of memory claimed for it,
// /rtas opened and its "instantiate-rtas" method run there; the firmware
// returns the entry point, which must lie inside that memory.
struct RtasInstance {
    uint32_t base = 0;
    uint32_t entry = 0;
    uint32_t size = 0;
};

// More than any RTAS needs (QEMU's is 20 bytes, PowerVM's a few MiB).
constexpr uint32_t kMaxRtasSize = 64u << 20;

uint32_t be32_value(uint32_t cell) {
    return __builtin_bswap32(cell);
}

RtasInstance instantiate_rtas(Stub& s, const OpenFirmware& of, uint64_t floor) {
    const uint32_t node = of.finddevice("/rtas");
    uint32_t size_cell = 0;
    if (node == kOfInvalid || of.getprop(node, "rtas-size", &size_cell, 4) != 4)
        s.fatal("Open Firmware has no /rtas with a 4-byte rtas-size: no RTAS to hand over");
    RtasInstance rtas;
    rtas.size = be32_value(size_cell);
    if (rtas.size == 0 || rtas.size > kMaxRtasSize)
        s.fatal("Open Firmware's /rtas rtas-size is 0 or larger than 64 MiB");
    const Range at = claim_above(s, of, floor, rtas.size, "RTAS");
    rtas.base = static_cast<uint32_t>(at.base);
    const uint32_t instance = of.open("/rtas");
    if (instance == kOfInvalid)
        s.fatal("Open Firmware cannot open /rtas");
    if (!of.call_method("instantiate-rtas", instance, rtas.base, &rtas.entry) ||
        rtas.entry < rtas.base || rtas.entry - rtas.base >= rtas.size)
        s.fatal("Open Firmware's instantiate-rtas failed or returned an entry outside the "
                "memory given to it");
    s.say("RTAS instantiated at ").hex(rtas.base).str(" (entry ").hex(rtas.entry).str(", ");
    s.con.dec(rtas.size).str(" bytes)").nl();
    return rtas;
}

// The boot CPU's physical id: /chosen cpu (an instance) -> its package's
// reg, a single cell.
uint32_t boot_cpu(Stub& s, const OpenFirmware& of, uint32_t chosen) {
    uint32_t instance = 0;
    if (of.getprop(chosen, "cpu", &instance, 4) != 4)
        s.fatal("Open Firmware's /chosen has no 4-byte cpu (the boot CPU)");
    const uint32_t package = of.instance_to_package(be32_value(instance));
    uint32_t reg = 0;
    if (package == kOfInvalid || package == 0 || of.getprop(package, "reg", &reg, 4) != 4)
        s.fatal("the boot CPU's node (/chosen cpu) has no 4-byte reg");
    return be32_value(reg);
}

// svm=on, firmware-style: leave Open Firmware the way Linux's prom_init does
// before UV_ESM, then go on as the kexec-style entry does with the flattened
// tree (r3) and the image's own base (r4). Everything claimed here lies above
// the kernel's load range, which the kexec-style path unpacks the kernel to.
[[noreturn]] void leave_firmware_for_esm(Stub& s, const OpenFirmware& of, uint32_t chosen,
                                         const Range& kernel) {
    s.say("svm=on: leaving Open Firmware for UV_ESM, as Linux's prom_init does").nl();
    const RtasInstance rtas = instantiate_rtas(s, of, kernel.end());
    const uint32_t cpu = boot_cpu(s, of, chosen);
    const Range tree = claim_above(s, of, kernel.end(), kMaxFdtSize, "the flattened device tree");
    void* fdt = gpa_ptr<void>(tree.base);
    const Range reserved[1] = {Range{rtas.base, rtas.size}};
    OfWalk walk;
    const OfFlattenResult r =
        of_flatten(of, fdt, static_cast<uint32_t>(tree.size), reserved, 1, cpu, walk);
    if (r.error != OfFlattenError::none) {
        s.say("error: Open Firmware's device tree: ").str(of_flatten_message(r.error));
        if (r.path[0] != '\0')
            s.con.str(" (at ").str(r.path).str(")");
        if (r.fdt_err != 0)
            s.con.str(": ").str(fdt_error_name(r.fdt_err));
        s.con.nl();
        s.stop();
    }
    const int err =
        of_finish_tree(fdt, static_cast<uint32_t>(tree.size), rtas.base, rtas.entry, rtas.size);
    if (err < 0) {
        s.say("error: completing the flattened device tree: ").str(fdt_error_name(err)).nl();
        s.stop();
    }
    s.say("device tree flattened at ").hex(tree.base).str(": ").dec(r.nodes).str(" nodes, ");
    s.con.dec(r.props).str(" properties, ").dec(fdt_totalsize(fdt)).str(" bytes; boot CPU ");
    s.con.dec(cpu).str("; reserve map ").dec(static_cast<uint64_t>(fdt_num_mem_rsv(fdt)));
    s.con.str(" entries (RTAS, /reserved-memory)").nl();
    s.say("quiescing Open Firmware; continuing kexec-style (r3 = fdt ").hex(tree.base);
    s.con.str(", r4 = ").hex(s.kbase).str(")").nl();
    // From here on no client call: the console and RTAS come from the tree.
    of.quiesce();
    bootstrap_kexec_style(tree.base, s.kbase);
}

} // namespace

void boot_firmware_style(uint64_t of_entry, uint64_t r3, uint64_t r4) {
    const OpenFirmware of(of_entry);
    Stub s{Calls()};
    s.calls.use_open_firmware(&of, of.stdout_ihandle());
    s.kbase = ptr_gpa(__stub_start);
    s.say("firmware-style entry at ").hex(s.kbase).str(" (Open Firmware client interface at ");
    s.con.hex(of_entry).str(")").nl();
    load_manifest(s);
    if (s.image.end() > k4G)
        s.fatal("the image must lie below 4 GiB for Open Firmware");

    const ComponentView& k = s.manifest.get(ComponentId::kernel);
    Range kernel;
    if (!make_range(k.load_address, k.memory_size, &kernel) || kernel.end() > k4G)
        s.fatal("the kernel's load range must lie below 4 GiB");
    if (kernel.overlaps(s.image))
        s.fatal("the kernel's load range overlaps the image");
    if (k.entry_offset >= k.memory_size)
        s.fatal("the kernel's entry point lies outside its image");
    const uint32_t chosen = of.finddevice("/chosen");
    if (chosen == kOfInvalid)
        s.fatal("Open Firmware has no /chosen");
    report_ignored_loader_input(s, of, chosen, r3, r4);
    if (svm_requested(s))
        leave_firmware_for_esm(s, of, chosen, kernel);
    const uint64_t kernel_at = claim_kernel_memory(s, of, kernel);
    RegionAllocator scratch(
        claim_above(s, of, kernel.end(), kScratchSize, "the stub's scratch space"));

    // Open Firmware's device tree first: once the kernel is unpacked over low
    // memory, the less the firmware still runs, the better.
    set_bootargs(s, of, chosen, scratch);
    const Range blob = copy_out(s, of, kernel.end(), s.blob, "the ESM blob");
    publish_esm_blob(s, of, chosen, blob);
    s.say("/chosen: bootargs, linux,esm-blob-start/end ").hex(blob.base).str("..").hex(blob.end());
    s.con.nl();
    Range initrd;
    if (s.manifest.get(ComponentId::initrd).present) {
        initrd = copy_out(s, of, kernel.end(), s.placed(ComponentId::initrd), "the initrd");
        s.say("initrd ").dec(initrd.size).str(" bytes at ").hex(initrd.base).nl();
    }

    unpack_kernel(s, scratch, kernel_at);

    const uint64_t entry = kernel_at + k.entry_offset;
    s.say("entering the kernel at ").hex(entry).str(" like a zImage (r3 = initrd ");
    s.con.hex(initrd.base).str(", r4 = ").hex(initrd.size).str(", r5 = Open Firmware)").nl();
    // On the firmware's stack: the kernel's prom_init runs on it.
    svmkit_ppc64le_enter(entry, initrd.base, initrd.size, of_entry, 0);
}

} // namespace svmkit::stub
