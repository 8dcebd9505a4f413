// svmkit boot: boots a secure image on the simulated machine and reports each
// stage (docs/platform.md; JSON schema svmkit-boot-v1).
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"

#include "wrapper/command.hpp"
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "format/esm_crypto.hpp"
#include "format/image_reader.hpp"
#include "format/verify.hpp"
#include "guest/uv_abi.h"
#include "platform/block_backend.hpp"
#include "platform/machine.hpp"
#include "platform/platform_fdt.hpp"
#include "platform/qemu/first_stage.hpp"
#include "platform/qemu/qemu_boot.hpp"
#include "wrapper/hex_text.hpp"
#include "wrapper/json.hpp"
#include "wrapper/load_constraints.hpp"
#include "wrapper/memory_map.hpp"

#include "base/file.hpp"
#include "base/output_file.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <unistd.h>

namespace svmkit::cli {

namespace {

using platform::BootOutcome;
using platform::BootReport;

std::string millis(std::uint64_t us) {
    return fmt::format("{:.3f} ms", static_cast<double>(us) / 1e3);
}

// A disk as the report names it (docs/cli.md, "boot"): checked before the
// machine starts, served by one back end.
struct DiskReport {
    std::string path;
    std::uint64_t size = 0;
    std::string_view backend; // the program: svmkit-vhost-blk or qemu-storage-daemon
};

std::string io_text(const platform::DiskIo* io) {
    if (io == nullptr)
        return "";
    std::string out;
    if (io->counters) {
        const vhost_user::BlkCounters& c = *io->counters;
        out += fmt::format("; {} requests ({} reads, {} writes, {} flushes, {} other, {} failed), "
                           "{} bytes read, {} bytes written",
                           c.requests, c.reads, c.writes, c.flushes, c.other, c.errors,
                           c.bytes_read, c.bytes_written);
    } else {
        out += "; I/O counters: none (qemu-storage-daemon's export keeps none)";
    }
    if (!io->failure.empty())
        out += "\n        BACK END FAILED: " + io->failure;
    return out;
}

// The report's disks: each named, sized, with its back end and what it
// served (r.disks is empty when the VM stopped before the counters were
// collected).
std::string disks_text(const BootReport& r, const std::vector<DiskReport>& disks) {
    if (disks.empty())
        return {};
    std::string out = "  disks\n";
    for (std::size_t i = 0; i < disks.size(); ++i)
        out += fmt::format("      disk{} {}: {} bytes ({} MiB), back end {}{}\n", i, disks[i].path,
                           disks[i].size, disks[i].size >> 20, disks[i].backend,
                           io_text(i < r.disks.size() ? &r.disks[i] : nullptr));
    return out;
}

void io_json(JsonWriter& j, const platform::DiskIo* io) {
    if (io == nullptr || !io->counters) {
        j.null("io");
    } else {
        const vhost_user::BlkCounters& c = *io->counters;
        j.begin_object("io");
        j.value("requests", c.requests);
        j.value("reads", c.reads);
        j.value("writes", c.writes);
        j.value("flushes", c.flushes);
        j.value("other", c.other);
        j.value("failed", c.errors);
        j.value("bytes_read", c.bytes_read);
        j.value("bytes_written", c.bytes_written);
        j.end_object();
    }
    if (io == nullptr || io->failure.empty())
        j.null("failure");
    else
        j.value("failure", io->failure);
}

void disks_json(JsonWriter& j, const BootReport& r, const std::vector<DiskReport>& disks) {
    j.begin_array("disks");
    for (std::size_t i = 0; i < disks.size(); ++i) {
        j.begin_object();
        j.value("name", fmt::format("disk{}", i));
        j.value("path", disks[i].path);
        j.value("size", disks[i].size);
        j.value("backend", disks[i].backend);
        io_json(j, i < r.disks.size() ? &r.disks[i] : nullptr);
        j.end_object();
    }
    j.end_array();
}

// A back end that failed during the boot: said on stderr too, not only in
// the report.
void warn_disk_failures(const BootReport& r) {
    for (const platform::DiskIo& io : r.disks)
        if (!io.failure.empty())
            std::fprintf(stderr, "svmkit: warning: %s\n", io.failure.c_str());
}

std::string result_line(const BootReport& r) {
    switch (r.outcome) {
    case BootOutcome::exited:
        return fmt::format("exited with status {}", r.exit_status.value_or(0));
    case BootOutcome::refused:
        return "REFUSED: " + r.message;
    default:
        return fmt::format("{}: {}", boot_outcome_name(r.outcome), r.message);
    }
}

std::string digest_hex(const std::array<std::uint8_t, 32>& d) {
    return format::hex(std::as_bytes(std::span(d)));
}

std::string_view loader_source_name(std::uint64_t source) {
    switch (source) {
    case SVMKIT_LOADER_SOURCE_KEXEC:
        return "kexec";
    case SVMKIT_LOADER_SOURCE_DISK:
        return "disk";
    default:
        return "none";
    }
}

std::string loader_load_text(const platform::LoaderReport& l) {
    std::string out = fmt::format("      boot loader {} at {:#x}..{:#x}, entry {:#x}\n",
                                  l.program.path, l.program.start, l.program.end, l.program.entry);
    out += fmt::format("      platform command line \"{}\"\n", l.cmdline);
    if (l.kexec_buffer)
        out += fmt::format("      kexec image {:#x}..{:#x} (/chosen linux,initrd-start/end)\n",
                           l.kexec_buffer->first, l.kexec_buffer->second);
    return out;
}

std::string loader_stage_text(const platform::LoaderReport& l) {
    std::string out;
    if (l.entries)
        out += fmt::format("      boot menu: {} entries, chose {} \"{}\"\n", *l.entries, l.chosen,
                           l.chosen_name);
    if (l.source != 0)
        out += fmt::format("      image from {}: {:#x} +{}\n", loader_source_name(l.source),
                           l.image_gpa, l.image_size);
    for (const platform::LoaderSegmentRecord& seg : l.segments)
        out += fmt::format("      segment {:#x} +{:<10} sha256 {}\n", seg.address, seg.size,
                           digest_hex(seg.sha256));
    if (l.placed)
        out += fmt::format("      {} segments placed; entry {:#x}, kbase {:#x}\n",
                           l.segments.size(), l.entry, l.kbase);
    if (l.unshared) {
        out += fmt::format("      running secure: UV_UNSHARE_ALL_PAGES before the jump: {}",
                           svmkit_uv_code_name(l.unshared->return_code));
        if (l.unshared->pool_size != 0)
            out +=
                fmt::format(" (its device tree's bounce pool {:#x}..{:#x})", l.unshared->pool_base,
                            l.unshared->pool_base + l.unshared->pool_size);
        out += "\n";
    }
    if (l.refusal)
        out += fmt::format("      REFUSED by the loader: {}\n", refusal_line(*l.refusal));
    if (l.purgatory_ok)
        out += *l.purgatory_ok
                   ? "      purgatory: every segment digest rechecked, jumped to the stub\n"
                   : fmt::format("      purgatory: segment {} CHANGED after placement\n",
                                 l.bad_segment);
    return out;
}

// " (in the initrd's cpio member M)" for a blob found there, else "".
std::string esm_source_text(std::string_view source) {
    constexpr std::string_view kInitrd = "initrd:";
    if (source.substr(0, kInitrd.size()) != kInitrd)
        return "";
    return fmt::format(" (in the initrd's cpio member {})", source.substr(kInitrd.size()));
}

std::string unpacked_text(const platform::KernelUnpacked& k, std::string_view what) {
    return fmt::format("      kernel {}{} bytes at {:#x} ({}), digest checked by the stub\n", what,
                       k.size, k.load_address, k.inflated ? "inflated" : "copied");
}

// Where every piece landed in guest memory, as the report knows it: the
// image (or the boot loader) and the firmware's FDT and stack, the loader's
// kexec buffer and placed (or refused) segments, the unpacked kernel, the
// initrd's copy, the pages shared (the bounce pool). Sorted, gaps and
// overlaps marked (wrapper/memory_map.hpp).
// The name of the image or placed segment holding [start, end), or "".
std::string container_of(const std::vector<MapEntry>& entries, std::uint64_t start,
                         std::uint64_t end) {
    for (const MapEntry& e : entries)
        if ((e.kind == "image" || e.kind == "segment") && e.start <= start && end <= e.end)
            return e.name;
    return "";
}

std::vector<MapRow> report_map(const BootReport& r) {
    const bool via_loader = r.loader && !r.loader->secure;
    std::vector<MapEntry> e;
    e.push_back({via_loader ? "the boot loader" : "the image", via_loader ? "loader" : "image",
                 r.placed.kbase, r.placed.end});
    e.push_back({"the device tree", "firmware", r.fdt, r.fdt + platform::kPlatformFdtMaxSize});
    e.push_back({"the firmware stack", "firmware", r.stack_base, r.stack_top});
    if (r.loader) {
        const platform::LoaderReport& l = *r.loader;
        if (l.kexec_buffer)
            e.push_back({"the kexec image buffer", "loader", l.kexec_buffer->first,
                         l.kexec_buffer->second});
        for (std::size_t i = 0; i < l.segments.size(); ++i)
            e.push_back({fmt::format("segment {} (placed)", i), "segment", l.segments[i].address,
                         l.segments[i].address + l.segments[i].size});
        if (l.refusal && l.refusal->segment != loader::kNoIndex)
            e.push_back({fmt::format("segment {} (refused)", l.refusal->segment), "segment",
                         l.refusal->segment_start, l.refusal->segment_end});
    }
    if (r.kernel)
        e.push_back({"the kernel (unpacked)", "kernel", r.kernel->load_address,
                     r.kernel->load_address + r.kernel->size});
    if (r.initrd) // where the kernel finds it: often still inside what was placed
        e.push_back({"the initrd", "initrd", r.initrd->first, r.initrd->second,
                     container_of(e, r.initrd->first, r.initrd->second)});
    for (const platform::ShareRecord& sh : r.shares)
        if (sh.share && sh.ret == U_SUCCESS)
            e.push_back(
                {"the bounce pool (shared)", "shared", sh.pfn << 16, (sh.pfn + sh.pages) << 16});
    return memory_map(std::move(e), 0, r.memory_size);
}

void report_text(const BootReport& r, const std::vector<DiskReport>& disks) {
    std::string out = fmt::format("\nsvmkit boot report: {} (memory {} MiB, {})\n", r.image,
                                  r.memory_size >> 20, r.platform);
    for (const platform::BootStage& s : r.stages) {
        out += fmt::format("  {:<12} at {:>12}  took {:>12}\n", s.name, millis(s.start_us),
                           millis(s.duration_us));
        if (s.name == "load")
            out += fmt::format("      image {:#x}..{:#x}, entry {:#x}; fdt {:#x}; guest stack "
                               "{:#x}..{:#x}\n",
                               r.placed.kbase, r.placed.end, r.placed.entry, r.fdt, r.stack_base,
                               r.stack_top);
        if (s.name == "load" && r.loader && !r.loader->secure)
            out += loader_load_text(*r.loader);
        if (s.name == "loader" && r.loader)
            out += loader_stage_text(*r.loader);
        if (s.name == "esm" && r.esm) {
            const platform::EsmResult& e = *r.esm;
            out += fmt::format("      {} pages secured\n", e.pages_secured);
            for (const signer::KeyId& id : e.trusted_signers)
                out += fmt::format("      signature by trusted key {}\n", signer::key_id_hex(id));
            for (const platform::DigestCheck& d : e.digests)
                out += fmt::format("      {:<12} {:#x} +{:<10} {} {} {}\n",
                                   format::component_name(d.kind), d.address, d.size,
                                   signer::digest_name(e.manifest.hash), format::hex(d.digest),
                                   d.ok ? "ok" : "MISMATCH");
            if (!e.esm_lockbox.empty()) {
                out += fmt::format("      ibm,esm{}: {} opened with the machine key; sealed "
                                   "digests match; {} secret file(s)",
                                   esm_source_text(e.esm_source), e.esm_lockbox,
                                   e.esm_file_names.size());
                for (const std::string& name : e.esm_file_names)
                    out += fmt::format(" {}", name);
                out += "\n";
            }
            if (!e.ok())
                out += fmt::format(
                    "      refused: {} ({} {}): {}\n", platform::esm_failure_name(e.failure),
                    svmkit_uv_code_name(r.esm_return_code), r.esm_return_code, e.message);
        }
        // A secure kexec has two secure stub runs: the first unpacked the
        // loader (first_kernel), the second (stub-kexec) the last kernel.
        // The share records, in call order, go under the last one.
        const bool kexec = r.first_kernel.has_value();
        if (s.name == "stub-secure" && kexec)
            out += unpacked_text(*r.first_kernel, "(the loader) ");
        if ((s.name == "stub-secure" && !kexec) || s.name == "stub-kexec") {
            if (r.kernel)
                out += unpacked_text(*r.kernel, "");
            if (r.initrd)
                out +=
                    fmt::format("      initrd {:#x}..{:#x}\n", r.initrd->first, r.initrd->second);
            for (const platform::ShareRecord& sh : r.shares)
                out += fmt::format(
                    "      {} {:#x}..{:#x} ({} pages): {}\n", sh.share ? "shared" : "unshared",
                    sh.pfn << 16, (sh.pfn + sh.pages) << 16, sh.pages, svmkit_uv_code_name(sh.ret));
        }
        if (s.name == "kernel" && r.kernel_entry)
            out +=
                fmt::format("      entered at {:#x} (r3 = fdt {:#x}, stack top {:#x})\n",
                            r.kernel_entry->entry, r.kernel_entry->fdt, r.kernel_entry->stack_top);
    }
    out += "  memory map\n" + memory_map_text(report_map(r));
    out += disks_text(r, disks);
    std::string namespaces; // the vCPU's sandbox: its new namespaces
    for (const std::string& name : r.vcpu_namespaces)
        namespaces += (namespaces.empty() ? "" : ", ") + name;
    out += fmt::format("  vcpu         sandboxed; new namespaces: {}\n",
                       namespaces.empty() ? "none" : namespaces);
    out += fmt::format("  result       {} (total {})\n", result_line(r), millis(r.total_us));
    std::fputs(out.c_str(), stdout);
}

void report_json(const BootReport& r, const std::vector<DiskReport>& disks) {
    JsonWriter j;
    j.begin_object();
    j.value("schema", "svmkit-boot-v1");
    j.value("image", r.image);
    j.value("platform", r.platform);
    j.value("memory_size", r.memory_size);
    j.begin_object("result");
    j.value("outcome", platform::boot_outcome_name(r.outcome));
    if (r.exit_status)
        j.value("exit_status", *r.exit_status);
    else
        j.null("exit_status");
    j.value("message", r.message);
    j.value("total_us", r.total_us);
    j.end_object();
    j.begin_array("stages");
    for (const platform::BootStage& s : r.stages) {
        j.begin_object();
        j.value("name", s.name);
        j.value("start_us", s.start_us);
        j.value("duration_us", s.duration_us);
        j.end_object();
    }
    j.end_array();
    j.begin_object("load");
    j.value("kbase", hex_address(r.placed.kbase));
    j.value("entry", hex_address(r.placed.entry));
    j.value("image_end", hex_address(r.placed.end));
    j.value("manifest_start", hex_address(r.placed.manifest_start));
    j.value("manifest_end", hex_address(r.placed.manifest_end));
    j.value("fdt", hex_address(r.fdt));
    j.value("stack_base", hex_address(r.stack_base));
    j.value("stack_top", hex_address(r.stack_top));
    j.end_object();
    if (r.esm) {
        const platform::EsmResult& e = *r.esm;
        j.begin_object("esm");
        j.value("ok", e.ok());
        j.value("failure", platform::esm_failure_name(e.failure));
        j.value("message", e.message);
        j.value("return_code", svmkit_uv_code_name(r.esm_return_code));
        j.value("pages_secured", e.pages_secured);
        j.value("hash", signer::digest_name(e.manifest.hash));
        j.value("security_version", e.manifest.security_version);
        j.begin_array("signers");
        for (const signer::KeyId& id : e.trusted_signers)
            j.element(signer::key_id_hex(id));
        j.end_array();
        j.begin_array("digests");
        for (const platform::DigestCheck& d : e.digests) {
            j.begin_object();
            j.value("component", format::component_name(d.kind));
            j.value("address", hex_address(d.address));
            j.value("size", d.size);
            j.value("digest", format::hex(d.digest));
            j.value("ok", d.ok);
            j.end_object();
        }
        j.end_array();
        if (e.esm_lockbox.empty()) {
            j.null("esm_lockbox");
        } else {
            j.value("esm_lockbox", e.esm_lockbox);
            j.value("esm_source", e.esm_source);
            j.begin_array("esm_files");
            for (const std::string& name : e.esm_file_names)
                j.element(name);
            j.end_array();
        }
        j.end_object();
    } else {
        j.null("esm");
    }
    j.begin_object("pool");
    j.begin_array("calls");
    for (const platform::ShareRecord& sh : r.shares) {
        j.begin_object();
        j.value("call", sh.share ? "UV_SHARE_PAGE" : "UV_UNSHARE_PAGE");
        j.value("base", hex_address(sh.pfn << 16));
        j.value("size", sh.pages << 16);
        j.value("pages", sh.pages);
        j.value("return_code", svmkit_uv_code_name(sh.ret));
        j.end_object();
    }
    j.end_array();
    j.value("pages_shared", r.pages_shared_at_end);
    j.end_object();
    if (r.kernel) {
        j.begin_object("kernel");
        j.value("load_address", hex_address(r.kernel->load_address));
        j.value("size", r.kernel->size);
        j.value("inflated", r.kernel->inflated);
        j.end_object();
    } else {
        j.null("kernel");
    }
    if (r.initrd) {
        j.begin_object("initrd");
        j.value("start", hex_address(r.initrd->first));
        j.value("end", hex_address(r.initrd->second));
        j.end_object();
    } else {
        j.null("initrd");
    }
    if (r.kernel_entry) {
        j.begin_object("kernel_entry");
        j.value("entry", hex_address(r.kernel_entry->entry));
        j.value("fdt", hex_address(r.kernel_entry->fdt));
        j.value("stack_top", hex_address(r.kernel_entry->stack_top));
        j.end_object();
    } else {
        j.null("kernel_entry");
    }
    disks_json(j, r, disks);
    j.value("console", r.console);
    if (r.loader) {
        const platform::LoaderReport& l = *r.loader;
        j.begin_object("loader");
        j.value("secure", l.secure);
        j.value("program", l.program.path);
        j.value("program_start", hex_address(l.program.start));
        j.value("program_end", hex_address(l.program.end));
        j.value("cmdline", l.cmdline);
        if (l.kexec_buffer) {
            j.begin_object("kexec_buffer");
            j.value("start", hex_address(l.kexec_buffer->first));
            j.value("end", hex_address(l.kexec_buffer->second));
            j.end_object();
        } else {
            j.null("kexec_buffer");
        }
        j.value("source", loader_source_name(l.source));
        j.value("image_address", hex_address(l.image_gpa));
        j.value("image_size", l.image_size);
        if (l.entries) {
            j.value("entries", *l.entries);
            j.value("chosen", l.chosen);
            j.value("chosen_name", l.chosen_name);
        } else {
            j.null("entries");
            j.null("chosen");
            j.null("chosen_name");
        }
        j.begin_array("segments");
        for (const platform::LoaderSegmentRecord& seg : l.segments) {
            j.begin_object();
            j.value("address", hex_address(seg.address));
            j.value("size", seg.size);
            j.value("sha256", digest_hex(seg.sha256));
            j.end_object();
        }
        j.end_array();
        j.value("placed", l.placed);
        j.value("entry", hex_address(l.entry));
        j.value("kbase", hex_address(l.kbase));
        if (l.purgatory_ok)
            j.value("purgatory", *l.purgatory_ok ? "ok" : "mismatch");
        else
            j.null("purgatory");
        if (l.purgatory_ok && !*l.purgatory_ok)
            j.value("bad_segment", l.bad_segment);
        else
            j.null("bad_segment");
        if (l.unshared) {
            j.begin_object("unshared");
            j.value("return_code", svmkit_uv_code_name(l.unshared->return_code));
            j.value("pool_base", hex_address(l.unshared->pool_base));
            j.value("pool_size", l.unshared->pool_size);
            j.end_object();
        } else {
            j.null("unshared");
        }
        if (l.refusal)
            j.json("refusal", refusal_json(*l.refusal));
        else
            j.null("refusal");
        j.end_object();
    } else {
        j.null("loader");
    }
    j.json("memory_map", memory_map_json(report_map(r)));
    j.begin_object("vcpu");
    j.begin_array("namespaces");
    for (const std::string& name : r.vcpu_namespaces)
        j.element(name);
    j.end_array();
    j.end_object();
    j.end_object();
    print_json(j.document(), stdout);
}

// A regular file's size, or a block device's (BLKGETSIZE64).
Result<std::uint64_t> disk_size(const std::string& disk, const struct stat& st) {
    if (!S_ISBLK(st.st_mode))
        return static_cast<std::uint64_t>(st.st_size);
    UniqueFd fd(::open(disk.c_str(), O_RDONLY | O_CLOEXEC));
    std::uint64_t size = 0;
    if (!fd.valid() || ::ioctl(fd.get(), BLKGETSIZE64, &size) != 0)
        return fail(ExitCode::io, "{}: cannot read the block device's size: {}", disk,
                    std::strerror(errno));
    return size;
}

// The disks, checked before anything starts (docs/cli.md): each a regular
// file or block device the guest may read and write, none given twice, none
// the image being booted (the guest could write over it) nor another input.
Result<std::vector<DiskReport>> check_disks(const BootOptions& o,
                                            platform::BlockBackendKind backend) {
    std::vector<DiskReport> disks;
    std::vector<std::pair<FileIdentity, std::string>> seen;
    for (const std::string& image : {o.image, o.kexec_image}) {
        struct stat st {};
        if (!image.empty() && ::stat(image.c_str(), &st) == 0)
            seen.emplace_back(identity_of(st), "the image being booted (" + image + ")");
    }
    for (const std::string& disk : o.disks) {
        struct stat st {};
        if (::stat(disk.c_str(), &st) != 0)
            return fail(ExitCode::io, "{}: cannot open the disk: {}", disk, std::strerror(errno));
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
            return fail(ExitCode::malformed, "{}: is {}; a disk is a regular file or block device",
                        disk, file_type_name(st.st_mode));
        for (const auto& [id, what] : seen)
            if (id == identity_of(st))
                return fail(ExitCode::usage, "{}: is {}", disk, what);
        if (auto input = IoRegistry::instance().input_named(identity_of(st)))
            return fail(ExitCode::usage, "{}: is the same file as the input {}", disk, *input);
        if (::access(disk.c_str(), R_OK | W_OK) != 0)
            return fail(ExitCode::io, "{}: cannot open the disk for reading and writing: {}", disk,
                        std::strerror(errno));
        seen.emplace_back(identity_of(st), "given twice (also as " + disk + ")");
        SVM_TRY(size, disk_size(disk, st));
        disks.push_back({disk, size, platform::block_backend_program(backend)});
    }
    return disks;
}

// svmkit's own exit code for the outcome (base/error.hpp); the guest's
// status is in the report, never the exit code itself, so a script can tell
// a refused image (5) from a guest that exited 5 (10, status 5).
int boot_exit_code(const BootReport& r) {
    ExitCode code = ExitCode::guest_failed;
    switch (r.outcome) {
    case BootOutcome::exited:
        if (r.exit_status.value_or(0) == 0)
            return 0;
        // The loader's reason first; the fixed form scripts parse stays last.
        if (r.loader && r.loader->refusal)
            std::fprintf(stderr, "svmkit: error: %s: the boot loader refused the image: %s\n",
                         r.image.c_str(), refusal_line(*r.loader->refusal).c_str());
        std::fprintf(stderr, "svmkit: error: %s: the guest exited with status %llu\n",
                     r.image.c_str(), static_cast<unsigned long long>(*r.exit_status));
        return static_cast<int>(ExitCode::guest_exit_status);
    case BootOutcome::refused:
    case BootOutcome::terminated: // the stub refusing before UV_ESM, or the guest giving up
        code = ExitCode::refused;
        break;
    case BootOutcome::timed_out:
        code = ExitCode::timeout;
        break;
    case BootOutcome::guest_violation:
        code = ExitCode::guest_violation;
        break;
    case BootOutcome::faulted:
    case BootOutcome::returned:
        break;
    }
    std::fprintf(stderr, "svmkit: error: %s: %s\n", r.image.c_str(), r.message.c_str());
    return static_cast<int>(code);
}

void print_report(const BootOptions& o, const BootReport& r, const std::vector<DiskReport>& disks) {
    if (o.json)
        report_json(r, disks);
    else
        report_text(r, disks);
    std::fflush(stdout);
}

// A ppc64le image: QEMU pseries with the ultravisor attached
// (platform/qemu/qemu_boot.hpp).
Result<int> run_boot_on_qemu(const BootOptions& o, platform::EsmPolicy policy, std::uint64_t memory,
                             std::chrono::steady_clock::time_point start) {
    const bool kexec = !o.kexec_image.empty();
    if (!o.disks.empty() || !o.hv_hooks.empty() || !o.hostile.empty() || !o.boot_entry.empty() ||
        !o.cmdline_extra.empty())
        return fail(ExitCode::usage, "--disk, --hv-hook, --hostile, --entry and --cmdline-extra "
                                     "are the simulated machine's; a ppc64le image boots on QEMU");
    if (kexec != !o.first_stage_kernel.empty() || kexec != !o.first_stage_initrd.empty())
        return fail(ExitCode::usage,
                    "--kexec with a ppc64le image needs --first-stage-kernel and "
                    "--first-stage-initrd (a normal guest whose /init kexecs /{}), and they "
                    "need --kexec",
                    platform::qemu::kKexecImageName);
    if (memory % (256u << 20) != 0)
        return fail(ExitCode::usage, "--memory {}: QEMU pseries takes a multiple of 256M",
                    o.memory);
    if (o.cpus == 0 || o.cpus > 8)
        return fail(ExitCode::usage, "--cpus {}: 1 to 8", o.cpus);
    platform::qemu::QemuConfig config;
    config.memory_size = memory;
    config.cpus = o.cpus;
    config.policy = std::move(policy);
    config.console_echo = o.quiet ? nullptr : (o.json ? stderr : stdout);
    config.timeout = std::chrono::seconds(o.timeout_seconds);
    config.origin = start;
    platform::qemu::QemuBootSpec spec;
    spec.image = kexec ? o.kexec_image : o.image;
    spec.first_stage_kernel = o.first_stage_kernel;
    spec.first_stage_initrd = o.first_stage_initrd;
    spec.first_stage_cmdline = o.first_stage_cmdline;
    SVM_TRY(report, platform::qemu::boot_on_qemu(std::move(config), spec));
    print_report(o, report, {});
    return boot_exit_code(report);
}

} // namespace

Result<int> run_boot(const BootOptions& o) {
    const auto start = std::chrono::steady_clock::now();
    SVM_TRY(policy, load_verify_policy(o.trusted_keys, o.revoked_keys, o.require_signatures,
                                       o.min_security_version));
    SVM_TRY(memory, parse_size(o.memory, "--memory"));
    if (memory == 0 || memory % platform::kGuestPageSize != 0)
        return fail(ExitCode::usage, "--memory {} must be a non-zero multiple of 64K", o.memory);
    if (o.timeout_seconds > 24ull * 3600)
        return fail(ExitCode::usage, "--timeout {} is longer than a day", o.timeout_seconds);
    // Three ways in: a secure image firmware-style; the normal-guest loader
    // with a kexec image; the loader alone, grub-style from a disk.
    const bool normal = o.image.empty();
    if (!normal && (!o.kexec_image.empty() || !o.boot_entry.empty() || !o.cmdline_extra.empty()))
        return fail(ExitCode::usage, "--kexec, --entry and --cmdline-extra boot through the "
                                     "loader: leave out the image argument");
    if (normal && o.kexec_image.empty() && o.disks.empty())
        return fail(ExitCode::usage,
                    "nothing to boot: give a secure image, --kexec IMG, or a --disk with a boot "
                    "partition (svmkit mkdisk)");
    if (!o.kexec_image.empty() && !o.boot_entry.empty())
        return fail(ExitCode::usage, "--entry picks from a disk's boot menu; --kexec has none");
    if (normal && o.boot_entry.find_first_of(" \t\n") != std::string::npos)
        return fail(ExitCode::usage, "--entry {}: a boot entry name has no blanks", o.boot_entry);
    platform::EsmPolicy esm_policy;
    esm_policy.verify = std::move(policy);
    if (o.machine_key) { // the machine's TPM key for ibm,esm lockboxes (docs/esm.md)
        SVM_TRY(machine_key, format::load_esm_private_key(*o.machine_key, {}));
        esm_policy.machine_key = std::make_shared<format::EsmKey>(std::move(machine_key));
    }
    std::optional<format::SecureImage> image;
    if (!normal) {
        SVM_TRY(opened, format::open_image(o.image));
        image.emplace(std::move(opened));
    }
    // Which machine boots it: a secure image's own ELF machine; with
    // --kexec, a first stage given (QEMU's normal guest kexecs it) or not
    // (the simulated machine's normal guest loader reads the image, and
    // refuses one for another machine itself, with its reason).
    const bool first_stage = !o.first_stage_kernel.empty() || !o.first_stage_initrd.empty();
    if (image ? image->arch == format::Arch::ppc64le : first_stage) {
        esm_policy.machine_arch = format::Arch::ppc64le;
        return run_boot_on_qemu(o, std::move(esm_policy), memory, start);
    }
    if (first_stage)
        return fail(ExitCode::usage,
                    "--first-stage-kernel and --first-stage-initrd boot a ppc64le image on QEMU "
                    "with --kexec; {} is x86_64",
                    o.image);
    if (normal && !o.kexec_image.empty() && ::access(o.kexec_image.c_str(), R_OK) != 0)
        return fail(ExitCode::io, "{}: cannot open the image: {}", o.kexec_image,
                    std::strerror(errno));
    if (!o.hv_hooks.empty() && o.hv_hook_log.empty())
        return fail(ExitCode::usage, "--hv-hook needs --hv-hook-log FILE for its results");
    std::optional<OutputFile> hook_log;
    if (!o.hv_hook_log.empty()) {
        SVM_TRY(f, OutputFile::create(o.hv_hook_log));
        hook_log.emplace(std::move(f));
    }

    platform::MachineConfig config;
    config.memory_size = memory;
    config.policy = std::move(esm_policy);
    // With --json the console streams to stderr, so stdout stays one JSON document.
    config.console_echo = o.quiet ? nullptr : (o.json ? stderr : stdout);
    config.timeout = std::chrono::seconds(o.timeout_seconds);
    config.origin = start;
    config.hv_hooks = o.hv_hooks;
    SVM_TRY(backend, platform::parse_block_backend(o.backend));
    if (!o.hostile.empty() && backend != platform::BlockBackendKind::svmkit)
        return fail(ExitCode::usage, "--hostile needs --backend svmkit");
    SVM_TRY(disks, check_disks(o, backend));
    for (const std::string& disk : o.disks)
        config.disks.push_back(platform::BlockBackendSpec{disk, backend, o.hostile, false});
    config.hv_hook_log_fd = hook_log ? hook_log->fd() : -1;
    SVM_TRY(machine, platform::Machine::create(std::move(config)));
    if (normal) {
        platform::NormalBootSpec spec;
        spec.kexec_image = o.kexec_image;
        if (!o.boot_entry.empty())
            spec.cmdline = "svmkit.boot_entry=" + o.boot_entry;
        if (!o.cmdline_extra.empty())
            spec.cmdline += (spec.cmdline.empty() ? "" : " ") + o.cmdline_extra;
        SVM_CHECK(machine->load_normal(spec));
    } else {
        SVM_CHECK(machine->load(*image));
    }
    SVM_CHECK(machine->run());
    if (hook_log)
        SVM_CHECK(hook_log->commit());
    const BootReport& r = machine->report();
    print_report(o, r, disks);
    warn_disk_failures(r);
    return boot_exit_code(r);
}

Command add_boot_command(CLI::App& app) {
    auto o = std::make_shared<BootOptions>();
    auto* bt = app.add_subcommand(
        "boot", "Boot a secure image and report each stage: on the simulated PEF machine, or a "
                "ppc64le image on QEMU pseries with the ultravisor attached");
    bt->add_option("image", o->image,
                   "Secure image, booted firmware-style (leave out with --kexec, or to boot "
                   "grub-style from the --disk that holds a boot partition)");
    bt->add_option("--kexec", o->kexec_image,
                   "Boot the normal-guest loader, which loads this secure image kexec-style "
                   "(docs/loader-boot.md)");
    bt->add_option("--entry", o->boot_entry,
                   "Grub-style: the boot.cfg entry to boot instead of the default "
                   "(svmkit.boot_entry=NAME on the platform command line)");
    bt->add_option("--cmdline-extra", o->cmdline_extra,
                   "Text appended to the platform command line the loader sees");
    bt->add_option("--trusted-key", o->trusted_keys,
                   "Public key or certificate the ultravisor trusts (repeatable)")
        ->required();
    bt->add_option("--revoked-key", o->revoked_keys,
                   "Revoked key: key id (hex) or public key file");
    bt->add_option("--require-signatures", o->require_signatures,
                   "Distinct trusted signers the ultravisor requires")
        ->capture_default_str();
    bt->add_option("--min-security-version", o->min_security_version,
                   "The ultravisor refuses images with a lower security version")
        ->capture_default_str();
    bt->add_option("--memory", o->memory, "Guest RAM (e.g. 512M, 1G)")->capture_default_str();
    bt->add_option("--hv-hook", o->hv_hooks,
                   "Test hook: play the hypervisor at an event, EVENT:ACTION "
                   "(docs/platform.md, \"Test hooks\"); repeatable");
    bt->add_option("--disk", o->disks,
                   "A disk image the guest sees as a virtio-blk device; repeatable");
    bt->add_option("--backend", o->backend,
                   "Who serves the disks over vhost-user: svmkit (svmkit-vhost-blk) or qemu "
                   "(qemu-storage-daemon)")
        ->capture_default_str();
    bt->add_option("--hostile", o->hostile,
                   "Make svmkit-vhost-blk misbehave (tests; docs/vhost-user.md lists the modes)");
    bt->add_option("--hv-hook-log", o->hv_hook_log, "Where the hooks' results go (JSON lines)");
    bt->add_option("--timeout", o->timeout_seconds,
                   "Stop a guest running longer (seconds; 0: never); exit 9")
        ->capture_default_str();
    add_json_flag(bt, o->json, "The boot report (svmkit-boot-v1; the console goes to stderr)");
    bt->add_flag("--quiet", o->quiet, "Do not stream the guest console");
    bt->add_option("--first-stage-kernel", o->first_stage_kernel,
                   "With --kexec: boot on QEMU pseries, this kernel's normal guest kexecs the "
                   "ppc64le image (docs/ppc64le.md)");
    bt->add_option("--first-stage-initrd", o->first_stage_initrd,
                   "ppc64le --kexec: that guest's initramfs; its /init kexecs "
                   "/svmkit-kexec.img, which svmkit appends");
    bt->add_option("--first-stage-cmdline", o->first_stage_cmdline,
                   "ppc64le --kexec: that kernel's command line")
        ->capture_default_str();
    bt->add_option("--cpus", o->cpus, "ppc64le: virtual CPUs of the QEMU guest (1 to 8)")
        ->capture_default_str();
    bt->add_option("--machine-key", o->machine_key,
                   "The machine's RSA private key (stands in for its TPM): opens the image's "
                   "ibm,esm lockbox for this machine");
    return {bt, [o] { return run_boot(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
