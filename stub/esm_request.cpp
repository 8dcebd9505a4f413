// The stub's first run: not yet secure. Builds the FDT the kernel will see,
// outside the image, and asks the ultravisor to verify the image and make the
// VM secure (UV_ESM). Writes nothing inside the image.
//
// A ppc64le stub whose command line lacks svm=on builds the same FDT and boots
// insecure from it (secure_boot.cpp boot_insecure).
#include "stub/stub.h"

#include "guest/cmdline.h"
#include "guest/fdt_util.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::stub {

namespace {

void check(Stub& s, int err, const char* what) {
    if (err >= 0)
        return;
    s.say("error: ").str(what).str(": ").str(fdt_error_name(err));
    s.con.nl();
    s.stop();
}

void set_u64(Stub& s, void* fdt, int node, const char* name, uint64_t v) {
    check(s, fdt_setprop_u64(fdt, node, name, v), name);
}

// What a loader put into /chosen beside the image (kexec-tools: --append,
// --command-line, --initrd) is not signed: the kernel gets the image's own
// command line and initrd, and the console says what was dropped.
void report_ignored_loader_input(Stub& s, const void* fdt) {
    const int chosen = fdt_path_offset(fdt, "/chosen");
    if (chosen < 0)
        return;
    int len = 0;
    const auto* args = static_cast<const char*>(fdt_getprop(fdt, chosen, "bootargs", &len));
    if (args != nullptr && len > 0 && args[0] != '\0') {
        s.say("ignoring the loader's command line [");
        for (int i = 0; i < len && args[i] != '\0'; ++i) {
            const char c = args[i] >= 0x20 && args[i] < 0x7f ? args[i] : '?';
            s.con.write(&c, 1);
        }
        s.con.str("]: the kernel gets the signed one").nl();
    }
    uint64_t start = 0;
    uint64_t end = 0;
    if (fdt_read_u64(fdt, chosen, "linux,initrd-start", &start) &&
        fdt_read_u64(fdt, chosen, "linux,initrd-end", &end) && end > start) {
        s.say("ignoring the loader's initrd ").hex(start).str("..").hex(end);
        s.con
            .str(s.manifest.get(ComponentId::initrd).present ? ": the kernel gets the signed one"
                                                             : ": the image has none")
            .nl();
    }
}

} // namespace

namespace {

// What the signed command line says of secure mode, as Linux's prom_init reads
// `svm=`: "on", "1", "y" ask for it; "off", "0", "n" refuse it; anything
// else (or no svm=) says nothing.
enum class SvmSetting { unset, on, off };

SvmSetting svm_setting(const Stub& s) {
    if (!s.manifest.get(ComponentId::cmdline).present)
        return SvmSetting::unset;
    const Range cmdline = s.placed(ComponentId::cmdline);
    const char* value = nullptr;
    size_t len = 0;
    if (!cmdline_param(gpa_ptr<const char>(cmdline.base), cmdline.size, "svm", &value, &len))
        return SvmSetting::unset;
    if ((len == 2 && memcmp(value, "on", 2) == 0) || (len == 1 && (*value == '1' || *value == 'y')))
        return SvmSetting::on;
    if ((len == 3 && memcmp(value, "off", 3) == 0) ||
        (len == 1 && (*value == '0' || *value == 'n')))
        return SvmSetting::off;
    return SvmSetting::unset;
}

} // namespace

bool svm_requested(const Stub& s) {
    return svm_setting(s) == SvmSetting::on;
}

bool svm_refused(const Stub& s) {
    return svm_setting(s) == SvmSetting::off;
}

uint64_t prepare_fdt(Stub& s, uint64_t platform_fdt) {
    // The platform's device tree is untrusted: checked whole before any use.
    const void* in = checked_fdt(s, platform_fdt, "from the platform");
    if (fdt_totalsize(in) > kMaxFdtSize)
        s.fatal("the platform's device tree is larger than 1 MiB");
    RegionAllocator alloc(ram_from_fdt(s, in));
    reserve_fixed(s, alloc, in, platform_fdt);
    report_ignored_loader_input(s, in);

    // A copy with room for what this run and the secure run add.
    uint64_t size = 0;
    Range buf;
    if (!align_up(fdt_totalsize(in) + kFdtHeadroom, kPageSize, &size) ||
        !alloc.allocate(size, kPageSize, &buf))
        s.fatal("no room for the device tree");
    void* fdt = gpa_ptr<void>(buf.base);
    check(s, fdt_open_into(in, fdt, static_cast<int>(buf.size)), "copying the device tree");
    // The kernel must not reuse the FDT's memory before it has read it.
    check(s, fdt_add_mem_rsv(fdt, buf.base, buf.size), "reserving the device tree");

    int chosen = fdt_path_offset(fdt, "/chosen");
    if (chosen == -FDT_ERR_NOTFOUND)
        chosen = fdt_add_subnode(fdt, 0, "chosen");
    check(s, chosen, "/chosen");

    // bootargs: the signed command line (the ultravisor compares them), as a
    // NUL-terminated string; empty without a command line.
    const Range cmdline =
        s.manifest.get(ComponentId::cmdline).present ? s.placed(ComponentId::cmdline) : Range{};
    if (cmdline.size > kMaxFdtSize)
        s.fatal("the command line is too long");
    void* args = nullptr;
    check(
        s,
        fdt_setprop_placeholder(fdt, chosen, "bootargs", static_cast<int>(cmdline.size + 1), &args),
        "bootargs");
    if (cmdline.size != 0)
        memcpy(args, gpa_ptr<void>(cmdline.base), cmdline.size);
    static_cast<char*>(args)[cmdline.size] = '\0';

    // Where the ultravisor finds the manifest (the ESM blob).
    set_u64(s, fdt, chosen, "linux,esm-blob-start", s.blob.base);
    set_u64(s, fdt, chosen, "linux,esm-blob-end", s.blob.end());
    // The initrd where it lies in the image; the secure run moves it. Never
    // the loader's.
    if (s.manifest.get(ComponentId::initrd).present) {
        const Range initrd = s.placed(ComponentId::initrd);
        set_u64(s, fdt, chosen, "linux,initrd-start", initrd.base);
        set_u64(s, fdt, chosen, "linux,initrd-end", initrd.end());
    } else {
        const char* const names[] = {"linux,initrd-start", "linux,initrd-end"};
        for (const char* name : names) {
            const int err = fdt_delprop(fdt, chosen, name);
            if (err != -FDT_ERR_NOTFOUND)
                check(s, err, name);
        }
    }
    return buf.base;
}

void request_esm(Stub& s, uint64_t platform_fdt) {
    const uint64_t fdt = prepare_fdt(s, platform_fdt);
    // Tells the secure run this FDT came back through UV_ESM for this image
    // (prepare_fdt left room for it). Not a security check: the stub is
    // entered secure only by the ultravisor or by a secure kernel, and both
    // of its secure paths build the kernel's FDT from checked input.
    set_u64(s, gpa_ptr<void>(fdt), fdt_path_offset(gpa_ptr<void>(fdt), "/chosen"), kEsmResumeMark,
            s.kbase);
    s.say("entering secure mode: UV_ESM kbase ").hex(s.kbase).str(" fdt ").hex(fdt);
    s.con.nl();
    const long rc = s.calls.ucall(UV_ESM, s.kbase, fdt);
    // UV_ESM returns only when it refused: never continue insecure.
    s.say("error: UV_ESM failed: ").sdec(rc).str(" (").str(svmkit_uv_code_name(rc));
    s.con.str("); the image was not accepted, stopping").nl();
    s.stop();
}

} // namespace svmkit::stub
