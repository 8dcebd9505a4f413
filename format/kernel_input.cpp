#include "format/kernel_input.hpp"

#include "base/checked.hpp"
#include "format/elf_reader.hpp"

#include <algorithm>
#include <cstring>
#include <elf.h>

namespace svmkit::format {

namespace {

std::string machine_name(std::uint16_t machine) {
    switch (machine) {
    case EM_X86_64:
        return "x86-64";
    case EM_PPC64:
        return "PowerPC64";
    case EM_PPC:
        return "PowerPC (32-bit)";
    case EM_AARCH64:
        return "AArch64";
    case EM_386:
        return "i386";
    case EM_RISCV:
        return "RISC-V";
    case EM_S390:
        return "s390";
    default:
        return fmt::format("machine {}", machine);
    }
}

// The loadable image is written out in full, gaps zero-filled; segments placed
// far apart (a corrupt or hostile header) must not turn a small file into
// gigabytes of output. Real kernels load well under this.
constexpr std::uint64_t kMaxKernelImageSize = 1ull << 30;

struct LoadSegment {
    std::uint64_t offset, filesz, memsz, paddr, vaddr;
};

// The kernel's words for the header refusals its users know; the rest in the
// ELF reader's words (elf_reader.hpp).
std::string kernel_refusal(const ElfFailure& f, Arch arch) {
    switch (f.code) {
    case ElfError::truncated_header:
        return "truncated ELF header";
    case ElfError::wrong_class:
        return "32-bit ELF kernels are not supported";
    case ElfError::wrong_endianness:
        return "big-endian ELF kernel; svmkit wraps little-endian kernels";
    case ElfError::wrong_machine:
        return fmt::format("kernel is for {}, but the image is for {} (--arch)",
                           machine_name(static_cast<std::uint16_t>(f.value)), arch_name(arch));
    case ElfError::wrong_type:
        return fmt::format("ELF kernel is not an executable (type {})", f.value);
    case ElfError::bad_phentsize:
        return fmt::format("unexpected program header size {}", f.value);
    case ElfError::phdr_table_overflow:
    case ElfError::phdr_table_outside_file:
        return "truncated ELF: program headers run past the end";
    case ElfError::shdr_table_overflow:
    case ElfError::shdr_table_outside_file:
        return "truncated ELF: section headers run past the end";
    default:
        return elf_failure_text(f);
    }
}

Result<ElfFile> read_kernel_elf(const InputFile& file, Arch arch) {
    const ElfRules rules{.types = {ET_EXEC, ET_DYN},
                         .machines = {arch_elf_machine(arch)},
                         .max_program_headers = kMaxKernelSegments,
                         .min_section_headers = 0,
                         .max_section_headers = kMaxKernelSections};
    auto elf = ElfFile::open(file, rules);
    if (!elf)
        return svmkit::unexpected(
            elf_error(file.path(), elf.error(), kernel_refusal(elf.error(), arch)));
    return std::move(*elf);
}

// Extents of allocated, file-backed sections at their load addresses
// (image_offset holds the absolute load address here), sorted and disjoint.
// Falls back to the segments when the file has no section headers.
Result<std::vector<Extent>> section_extents(const ElfFile& elf, const std::string& path,
                                            const std::vector<LoadSegment>& loads) {
    std::vector<Extent> out;
    const std::span<const Elf64_Shdr> shdrs = elf.section_headers();
    if (shdrs.empty()) {
        for (const LoadSegment& s : loads)
            if (s.filesz > 0)
                out.push_back(Extent{s.offset, s.filesz, s.paddr});
        return out;
    }
    for (std::size_t i = 1; i < shdrs.size(); ++i) {
        const Elf64_Shdr& sh = shdrs[i];
        if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_type == SHT_NOBITS || sh.sh_size == 0)
            continue;
        if (!elf.section_bytes(i))
            return fail(ExitCode::malformed, "{}: truncated ELF: section {} runs past the end",
                        path, i);
        const std::uint64_t end = sh.sh_offset + sh.sh_size;
        const LoadSegment* seg = nullptr;
        for (const LoadSegment& s : loads)
            if (sh.sh_offset >= s.offset && end <= s.offset + s.filesz)
                seg = &s;
        if (seg == nullptr)
            return fail(ExitCode::malformed,
                        "{}: allocated section {} is outside every loadable segment", path, i);
        out.push_back(Extent{sh.sh_offset, sh.sh_size, seg->paddr + (sh.sh_offset - seg->offset)});
    }
    std::sort(out.begin(), out.end(),
              [](const Extent& a, const Extent& b) { return a.image_offset < b.image_offset; });
    for (std::size_t i = 1; i < out.size(); ++i)
        if (out[i - 1].image_offset + out[i - 1].length > out[i].image_offset)
            return fail(ExitCode::malformed, "{}: sections overlap at load address {:#x}", path,
                        out[i].image_offset);
    return out;
}

Result<KernelInput> analyze_elf(const std::shared_ptr<const InputFile>& file, Arch arch) {
    const std::string& path = file->path();
    SVM_TRY(elf, read_kernel_elf(*file, arch));
    const Elf64_Ehdr& eh = elf.header();
    const std::span<const Elf64_Phdr> phdrs = elf.program_headers();

    std::vector<LoadSegment> loads;
    for (std::size_t i = 0; i < phdrs.size(); ++i) {
        const Elf64_Phdr& p = phdrs[i];
        if (p.p_type != PT_LOAD || p.p_memsz == 0)
            continue;
        if (p.p_filesz > p.p_memsz)
            return fail(ExitCode::malformed, "{}: segment {} has file size > memory size", path, i);
        if (auto in_file = elf.segment_bytes(i); !in_file) {
            const bool wraps = in_file.error().code == ElfError::segment_offset_overflow;
            return fail(ExitCode::malformed,
                        "{}: truncated ELF: segment {} needs bytes up to {} but the file has {}",
                        path, i, wraps ? ~0ull : p.p_offset + p.p_filesz, file->size());
        }
        if (!checked_add(p.p_paddr, p.p_memsz) || !checked_add(p.p_vaddr, p.p_memsz))
            return fail(ExitCode::malformed, "{}: segment {} address range overflows", path, i);
        loads.push_back(LoadSegment{p.p_offset, p.p_filesz, p.p_memsz, p.p_paddr, p.p_vaddr});
    }
    if (loads.empty())
        return fail(ExitCode::malformed, "{}: ELF kernel has no loadable segment", path);
    std::sort(loads.begin(), loads.end(),
              [](const LoadSegment& a, const LoadSegment& b) { return a.paddr < b.paddr; });
    for (std::size_t i = 1; i < loads.size(); ++i)
        if (loads[i - 1].paddr + loads[i - 1].memsz > loads[i].paddr)
            return fail(ExitCode::malformed, "{}: loadable segments overlap at {:#x}", path,
                        loads[i].paddr);

    // The loadable image is what `objcopy -O binary -S` writes: the contents
    // of every allocated section that has file bytes, placed at its load
    // (physical) address, from the lowest such address to the end of the
    // highest, gaps zero-filled. Program headers may also map the ELF headers,
    // which are not part of it.
    SVM_TRY(extents, section_extents(elf, path, loads));
    if (extents.empty())
        return fail(ExitCode::malformed, "{}: ELF kernel has no bytes to load", path);
    const std::uint64_t base = extents.front().image_offset; // absolute LMA until rebased
    KernelInput k;
    k.is_elf = true;
    k.image.label = path;
    k.image.file = file;
    std::uint64_t mem_end = 0;
    for (const LoadSegment& s : loads)
        mem_end = std::max(mem_end, s.paddr + s.memsz);
    for (Extent& e : extents)
        e.image_offset -= base;
    k.image.size = extents.back().image_offset + extents.back().length;
    if (k.image.size > kMaxKernelImageSize)
        return fail(ExitCode::malformed,
                    "{}: the loadable image spans {} bytes ({:#x} to {:#x}), more than the {} "
                    "bytes svmkit accepts; are the load addresses of its segments right?",
                    path, k.image.size, base, base + k.image.size, kMaxKernelImageSize);
    k.image.extents = std::move(extents);
    k.placement.load_address = base;
    k.placement.memory_size = std::max(mem_end - base, k.image.size);

    // The entry point is a virtual address; find it in its segment.
    bool found = false;
    for (const LoadSegment& s : loads) {
        if (eh.e_entry >= s.vaddr && eh.e_entry - s.vaddr < s.memsz &&
            s.paddr + (eh.e_entry - s.vaddr) >= base) {
            k.placement.entry_offset = s.paddr + (eh.e_entry - s.vaddr) - base;
            found = true;
            break;
        }
    }
    if (!found)
        return fail(ExitCode::malformed, "{}: entry point {:#x} is outside every loadable segment",
                    path, eh.e_entry);
    return k;
}

} // namespace

Result<KernelInput> analyze_kernel(const std::shared_ptr<const InputFile>& file, Arch arch,
                                   std::optional<std::uint64_t> load_address) {
    if (file->size() == 0)
        return fail(ExitCode::malformed, "{}: kernel file is empty", file->path());
    unsigned char magic[4] = {};
    bool is_elf = false;
    if (file->size() >= 4) {
        SVM_CHECK(file->read_at(0, std::as_writable_bytes(std::span(magic))));
        is_elf = std::memcmp(magic, ELFMAG, SELFMAG) == 0;
    }
    if (is_elf) {
        SVM_TRY(k, analyze_elf(file, arch));
        if (load_address && *load_address != k.placement.load_address)
            return fail(
                ExitCode::usage,
                "{}: --kernel-load-addr {:#x} contradicts the ELF kernel's load address {:#x}",
                file->path(), *load_address, k.placement.load_address);
        return k;
    }
    if (!load_address)
        return fail(ExitCode::usage,
                    "{}: not an ELF file; a raw kernel image needs --kernel-load-addr",
                    file->path());
    KernelInput k;
    k.image = PayloadSource::from_file(file);
    k.placement.load_address = *load_address;
    k.placement.memory_size = file->size();
    k.placement.entry_offset = 0;
    return k;
}

} // namespace svmkit::format
