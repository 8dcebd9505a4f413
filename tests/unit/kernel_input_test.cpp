// Unit tests for format/kernel_input: small ELF64 files crafted with <elf.h>
// structures, each breaking one rule, and a gcc-shaped image whose loadable
// image must be exactly what `objcopy -O binary -S` writes.
#include "format/kernel_input.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>
#include <elf.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace svmkit;
using namespace svmkit::format;
using svmkit::test::check_error;
using svmkit::test::random_bytes;
using svmkit::test::TempDir;

namespace {

using Bytes = std::vector<std::byte>;

// An ELF file to write: headers plus byte runs at file offsets.
struct ElfSpec {
    unsigned char elf_class = ELFCLASS64;
    unsigned char data = ELFDATA2LSB;
    std::uint16_t type = ET_EXEC;
    std::uint16_t machine = EM_X86_64;
    std::uint64_t entry = 0;
    std::vector<Elf64_Phdr> phdrs;
    std::vector<Elf64_Shdr> shdrs; // written after all contents; [0] must be the null section
    std::uint16_t shstrndx = 0;
    std::vector<std::pair<std::uint64_t, Bytes>> contents;
    std::optional<std::size_t> truncate_to;
};

Elf64_Phdr load_segment(std::uint64_t offset, std::uint64_t addr, std::uint64_t filesz,
                        std::uint64_t memsz, std::uint32_t flags = PF_R | PF_X) {
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = flags;
    p.p_offset = offset;
    p.p_vaddr = addr;
    p.p_paddr = addr;
    p.p_filesz = filesz;
    p.p_memsz = memsz;
    p.p_align = 0x1000;
    return p;
}

template <typename T>
void put(Bytes& b, std::uint64_t offset, const T& v) {
    if (b.size() < offset + sizeof(T))
        b.resize(offset + sizeof(T));
    std::memcpy(b.data() + offset, &v, sizeof(T));
}

Bytes build(const ElfSpec& s) {
    Bytes b(sizeof(Elf64_Ehdr) + s.phdrs.size() * sizeof(Elf64_Phdr));
    for (std::size_t i = 0; i < s.phdrs.size(); ++i)
        put(b, sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), s.phdrs[i]);
    for (const auto& [offset, bytes] : s.contents) {
        if (b.size() < offset + bytes.size())
            b.resize(offset + bytes.size());
        std::copy(bytes.begin(), bytes.end(), b.begin() + static_cast<std::ptrdiff_t>(offset));
    }
    std::uint64_t shoff = 0;
    if (!s.shdrs.empty()) {
        shoff = (b.size() + 7) & ~std::uint64_t{7};
        for (std::size_t i = 0; i < s.shdrs.size(); ++i)
            put(b, shoff + i * sizeof(Elf64_Shdr), s.shdrs[i]);
    }
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = s.elf_class;
    eh.e_ident[EI_DATA] = s.data;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = s.type;
    eh.e_machine = s.machine;
    eh.e_version = EV_CURRENT;
    eh.e_entry = s.entry;
    eh.e_phoff = s.phdrs.empty() ? 0 : sizeof(Elf64_Ehdr);
    eh.e_shoff = shoff;
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<std::uint16_t>(s.phdrs.size());
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = static_cast<std::uint16_t>(s.shdrs.size());
    eh.e_shstrndx = s.shstrndx;
    put(b, 0, eh);
    if (s.truncate_to)
        b.resize(*s.truncate_to);
    return b;
}

// One read-only executable segment at 0x200000 with 0x100 bytes from offset
// 0x1000, no section headers.
ElfSpec simple_elf() {
    ElfSpec s;
    s.entry = 0x200000;
    s.phdrs = {load_segment(0x1000, 0x200000, 0x100, 0x100)};
    s.contents = {{0x1000, random_bytes(0x100, 11)}};
    return s;
}

class Files {
  public:
    std::shared_ptr<const InputFile> write(const Bytes& data) {
        const std::string path = dir_.file("kernel" + std::to_string(n_++));
        svmkit::test::write_bytes(path, data);
        auto f = InputFile::open(path);
        REQUIRE(f.has_value());
        return std::make_shared<const InputFile>(std::move(*f));
    }
    [[nodiscard]] std::string path(int n) const { return dir_.file("kernel" + std::to_string(n)); }

  private:
    TempDir dir_{"kernel"};
    int n_ = 0;
};

Result<KernelInput> analyze(Files& files, const Bytes& data, Arch arch = Arch::x86_64,
                            std::optional<std::uint64_t> load = std::nullopt) {
    return analyze_kernel(files.write(data), arch, load);
}

Bytes image_bytes(const KernelInput& k) {
    Bytes out;
    auto r = stream_payload(k.image, [&](std::span<const std::byte> c) -> Result<void> {
        out.insert(out.end(), c.begin(), c.end());
        return {};
    });
    REQUIRE(r.has_value());
    return out;
}

} // namespace

TEST_CASE("kernel input: a simple ELF is its segment") {
    Files files;
    const ElfSpec s = simple_elf();
    auto k = analyze(files, build(s));
    REQUIRE_MESSAGE(k.has_value(), k.error().message);
    CHECK(k->is_elf);
    CHECK(k->placement.load_address == 0x200000);
    CHECK(k->placement.memory_size == 0x100);
    CHECK(k->placement.entry_offset == 0);
    CHECK(k->image.size == 0x100);
    CHECK(image_bytes(*k) == s.contents[0].second);
    // A matching --kernel-load-addr is accepted.
    CHECK(analyze(files, build(s), Arch::x86_64, 0x200000).has_value());
    // ppc64le kernels are EM_PPC64 little-endian.
    ElfSpec ppc = s;
    ppc.machine = EM_PPC64;
    CHECK(analyze(files, build(ppc), Arch::ppc64le).has_value());
}

TEST_CASE("kernel input: virtual and physical addresses, bss, entry") {
    Files files;
    ElfSpec s;
    const std::uint64_t va = 0xffffffff81000000ull, pa = 0x1000000;
    Elf64_Phdr text = load_segment(0x1000, va, 0x3000, 0x3000);
    text.p_paddr = pa;
    Elf64_Phdr data = load_segment(0x4000, va + 0x5000, 0x800, 0x10000, PF_R | PF_W);
    data.p_paddr = pa + 0x5000;
    s.phdrs = {text, data};
    s.entry = va + 0x1234;
    s.contents = {{0x1000, random_bytes(0x3000, 1)}, {0x4000, random_bytes(0x800, 2)}};
    auto k = analyze(files, build(s));
    REQUIRE_MESSAGE(k.has_value(), k.error().message);
    CHECK(k->placement.load_address == pa);
    CHECK(k->placement.entry_offset == 0x1234);
    CHECK(k->placement.memory_size == 0x15000);
    CHECK(k->image.size == 0x5800);
    Bytes expected(0x5800, std::byte{0});
    std::copy(s.contents[0].second.begin(), s.contents[0].second.end(), expected.begin());
    std::copy(s.contents[1].second.begin(), s.contents[1].second.end(), expected.begin() + 0x5000);
    CHECK(image_bytes(*k) == expected);
}

TEST_CASE("kernel input: malformed ELF files are refused") {
    Files files;
    auto reject = [&](const ElfSpec& s, std::string_view needle, Arch arch = Arch::x86_64) {
        auto r = analyze(files, build(s), arch);
        check_error(r, ExitCode::malformed, needle);
    };

    SUBCASE("control") {
        CHECK(analyze(files, build(simple_elf())).has_value());
    }
    SUBCASE("machine mismatch") {
        ElfSpec s = simple_elf();
        s.machine = EM_PPC64;
        reject(s, "kernel is for PowerPC64, but the image is for x86_64 (--arch)");
        reject(simple_elf(), "kernel is for x86-64, but the image is for ppc64le (--arch)",
               Arch::ppc64le);
        s.machine = EM_AARCH64;
        reject(s, "kernel is for AArch64, but the image is for x86_64");
    }
    SUBCASE("32-bit class") {
        ElfSpec s = simple_elf();
        s.elf_class = ELFCLASS32;
        reject(s, "32-bit ELF kernels are not supported");
    }
    SUBCASE("big-endian") {
        ElfSpec s = simple_elf();
        s.data = ELFDATA2MSB;
        reject(s, "big-endian ELF kernel");
    }
    SUBCASE("not an executable") {
        ElfSpec s = simple_elf();
        s.type = ET_REL;
        reject(s, "ELF kernel is not an executable (type 1)");
    }
    SUBCASE("truncated ELF header") {
        Bytes b = build(simple_elf());
        b.resize(40);
        check_error(analyze(files, b), ExitCode::malformed, "truncated ELF header");
        b.resize(10);
        check_error(analyze(files, b), ExitCode::malformed, "truncated ELF header");
    }
    SUBCASE("truncated program headers") {
        ElfSpec s = simple_elf();
        s.contents.clear();
        s.truncate_to = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) - 1;
        reject(s, "truncated ELF: program headers run past the end");
    }
    SUBCASE("no program headers") {
        ElfSpec s = simple_elf();
        s.phdrs.clear();
        reject(s, "0 program headers");
    }
    SUBCASE("segment past the end of the file") {
        ElfSpec s = simple_elf();
        s.phdrs[0].p_filesz = s.phdrs[0].p_memsz = 0x101;
        reject(s, "truncated ELF: segment 0 needs bytes up to 4353 but the file has 4352");
    }
    SUBCASE("p_filesz > p_memsz") {
        ElfSpec s = simple_elf();
        s.phdrs[0].p_memsz = 0xff;
        reject(s, "segment 0 has file size > memory size");
    }
    SUBCASE("segment address overflows") {
        ElfSpec s = simple_elf();
        s.phdrs[0].p_paddr = ~0ull - 0x10;
        reject(s, "segment 0 address range overflows");
    }
    SUBCASE("overlapping segments") {
        ElfSpec s = simple_elf();
        s.phdrs.push_back(load_segment(0x1000, 0x200000 + 0xff, 0x10, 0x10));
        reject(s, "loadable segments overlap at 0x2000ff");
        // Touching is fine.
        s.phdrs[1] = load_segment(0x1000, 0x200100, 0x10, 0x10);
        CHECK(analyze(files, build(s)).has_value());
    }
    SUBCASE("entry outside the segments") {
        for (std::uint64_t entry : {0x1fffffull, 0x200100ull, 0ull}) {
            CAPTURE(entry);
            ElfSpec s = simple_elf();
            s.entry = entry;
            reject(s, fmt::format("entry point {:#x} is outside every loadable segment", entry));
        }
        ElfSpec last = simple_elf();
        last.entry = 0x2000ff;
        auto k = analyze(files, build(last));
        REQUIRE(k.has_value());
        CHECK(k->placement.entry_offset == 0xff);
    }
    SUBCASE("no loadable segment") {
        ElfSpec s = simple_elf();
        s.phdrs[0].p_type = PT_NOTE;
        reject(s, "ELF kernel has no loadable segment");
    }
}

TEST_CASE("kernel input: raw images and empty files") {
    Files files;
    const Bytes raw = random_bytes(0x12345, 3);

    auto no_addr = analyze(files, raw);
    check_error(no_addr, ExitCode::usage,
                "not an ELF file; a raw kernel image needs "
                "--kernel-load-addr");
    CHECK(no_addr.error().message.starts_with(files.path(0) + ": "));

    auto k = analyze(files, raw, Arch::ppc64le, 0x400000);
    REQUIRE(k.has_value());
    CHECK_FALSE(k->is_elf);
    CHECK(k->placement.load_address == 0x400000);
    CHECK(k->placement.memory_size == raw.size());
    CHECK(k->placement.entry_offset == 0);
    CHECK(k->image.size == raw.size());
    CHECK(image_bytes(*k) == raw);

    // Short files are raw images too.
    CHECK(analyze(files, Bytes{std::byte{0x7f}, std::byte{'E'}}, Arch::x86_64, 0).has_value());

    check_error(analyze(files, {}, Arch::x86_64, 0x400000), ExitCode::malformed,
                "kernel file is empty");

    // An ELF kernel's own load address wins; a different one is a usage error.
    check_error(analyze(files, build(simple_elf()), Arch::x86_64, 0x300000), ExitCode::usage,
                "--kernel-load-addr 0x300000 contradicts the ELF kernel's load address 0x200000");
}

namespace {

// A gcc-shaped executable: the first PT_LOAD maps the ELF and program headers,
// a note and .text; the second .data and .bss. Non-allocated sections too.
struct GccLike {
    ElfSpec spec;
    Bytes note, text, data;
};

GccLike gcc_like() {
    GccLike g;
    g.note = random_bytes(0x24, 21);
    g.text = random_bytes(0x200, 22);
    g.data = random_bytes(0x100, 23);
    static constexpr char kNames[] = "\0.note.test\0.text\0.data\0.bss\0.comment\0.shstrtab";
    const std::string names(kNames, sizeof kNames); // with the final NUL
    auto name_at = [&](const char* n) {
        return static_cast<std::uint32_t>(names.find(std::string(n) + '\0'));
    };
    ElfSpec& s = g.spec;
    s.entry = 0x401020;
    Elf64_Phdr gnu_stack{};
    gnu_stack.p_type = PT_GNU_STACK;
    gnu_stack.p_flags = PF_R | PF_W;
    s.phdrs = {load_segment(0, 0x400000, 0x1200, 0x1200),
               load_segment(0x2000, 0x402000, 0x100, 0x500, PF_R | PF_W), gnu_stack};
    s.contents = {{0x200, g.note},
                  {0x1000, g.text},
                  {0x2000, g.data},
                  {0x2100, svmkit::test::to_bytes("GCC: (Debian 12.2.0-14) 12.2.0\0")},
                  {0x2200, svmkit::test::to_bytes(names)}};
    auto section = [&](const char* name, std::uint32_t type, std::uint64_t flags,
                       std::uint64_t addr, std::uint64_t offset, std::uint64_t size) {
        Elf64_Shdr sh{};
        sh.sh_name = name_at(name);
        sh.sh_type = type;
        sh.sh_flags = flags;
        sh.sh_addr = addr;
        sh.sh_offset = offset;
        sh.sh_size = size;
        sh.sh_addralign = 4;
        return sh;
    };
    s.shdrs = {
        Elf64_Shdr{},
        section(".note.test", SHT_NOTE, SHF_ALLOC, 0x400200, 0x200, g.note.size()),
        section(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0x401000, 0x1000, g.text.size()),
        section(".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 0x402000, 0x2000, g.data.size()),
        section(".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 0x402100, 0x2100, 0x400),
        section(".comment", SHT_PROGBITS, 0, 0, 0x2100, 31),
        section(".shstrtab", SHT_STRTAB, 0, 0, 0x2200, names.size()),
    };
    s.shstrndx = 6;
    return g;
}

} // namespace

TEST_CASE("kernel input: a gcc-shaped ELF gives what objcopy -O binary -S gives") {
    Files files;
    const GccLike g = gcc_like();
    const Bytes elf = build(g.spec);
    auto k = analyze(files, elf);
    REQUIRE_MESSAGE(k.has_value(), k.error().message);

    // By hand: from the lowest allocated section (.note.test at 0x400200, not
    // the ELF header at 0x400000) to the end of .data, gaps zero, no .bss.
    Bytes expected(0x402100 - 0x400200, std::byte{0});
    std::copy(g.note.begin(), g.note.end(), expected.begin());
    std::copy(g.text.begin(), g.text.end(), expected.begin() + (0x401000 - 0x400200));
    std::copy(g.data.begin(), g.data.end(), expected.begin() + (0x402000 - 0x400200));
    CHECK(k->placement.load_address == 0x400200);
    CHECK(k->placement.entry_offset == 0x401020 - 0x400200);
    CHECK(k->placement.memory_size == 0x402500 - 0x400200); // .bss included
    CHECK(k->image.size == expected.size());
    REQUIRE(k->image.extents.size() == 3);
    CHECK(k->image.extents[0].file_offset == 0x200);
    CHECK(k->image.extents[0].length == 0x24);
    CHECK(k->image.extents[0].image_offset == 0);
    CHECK(k->image.extents[1].file_offset == 0x1000);
    CHECK(k->image.extents[1].length == 0x200);
    CHECK(k->image.extents[1].image_offset == 0xe00);
    CHECK(k->image.extents[2].file_offset == 0x2000);
    CHECK(k->image.extents[2].length == 0x100);
    CHECK(k->image.extents[2].image_offset == 0x1e00);
    const Bytes got = image_bytes(*k);
    CHECK(got == expected);

    // And objcopy itself agrees, when it is installed.
    if (!svmkit::test::have_tool("objcopy")) {
        MESSAGE("objcopy not installed; cross-check skipped");
        return;
    }
    TempDir dir("objcopy");
    svmkit::test::write_bytes(dir.file("vmlinux"), elf);
    int status = 0;
    const std::string out = svmkit::test::run_capture(
        "objcopy -O binary -S " + dir.file("vmlinux") + " " + dir.file("Image"), status);
    CAPTURE(out);
    REQUIRE(status == 0);
    CHECK(svmkit::test::read_bytes(dir.file("Image")) == got);
}

TEST_CASE("kernel input: broken section headers") {
    Files files;
    SUBCASE("control") {
        CHECK(analyze(files, build(gcc_like().spec)).has_value());
    }
    SUBCASE("allocated section outside every segment") {
        GccLike g = gcc_like();
        g.spec.shdrs[3].sh_offset = 0x1800; // between the segments' file ranges
        check_error(analyze(files, build(g.spec)), ExitCode::malformed,
                    "allocated section 3 is outside every loadable segment");
    }
    SUBCASE("section past the end of the file") {
        GccLike g = gcc_like();
        g.spec.shdrs[2].sh_size = 0x100000;
        check_error(analyze(files, build(g.spec)), ExitCode::malformed,
                    "truncated ELF: section 2 runs past the end");
    }
    SUBCASE("sections overlapping at their load address") {
        GccLike g = gcc_like();
        g.spec.shdrs[1].sh_offset = 0x1000; // the note's bytes now are .text's
        g.spec.shdrs[1].sh_addr = 0x401000;
        check_error(analyze(files, build(g.spec)), ExitCode::malformed,
                    "sections overlap at load address 0x401000");
    }
    SUBCASE("section header table past the end of the file") {
        GccLike g = gcc_like();
        Bytes b = build(g.spec);
        b.resize(b.size() - 1);
        check_error(analyze(files, b), ExitCode::malformed,
                    "truncated ELF: section headers run past the end");
    }
}
