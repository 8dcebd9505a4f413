// Unit tests for format/stub_image: the embedded stubs satisfy the invariants
// every image relies on (read-only, not dynamically linked, no relocations,
// entry at the first byte of the code), checked both by parsing the ELF here
// and with readelf(1); and parse_stub_elf refuses copies that break them.
#include "format/stub_image.hpp"

#include "guest/layout.h"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <elf.h>

#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

using namespace svmkit;
using namespace svmkit::format;
using svmkit::test::check_error;

namespace {

using Bytes = std::vector<std::byte>;

const Arch kArches[] = {Arch::x86_64, Arch::ppc64le};

Bytes stub_copy(Arch arch) {
    auto elf = embedded_stub_elf(arch);
    return Bytes(elf.begin(), elf.end());
}

template <typename T>
T load(const Bytes& b, std::uint64_t offset) {
    REQUIRE(offset + sizeof(T) <= b.size());
    T v;
    std::memcpy(&v, b.data() + offset, sizeof(T));
    return v;
}

template <typename T>
void store(Bytes& b, std::uint64_t offset, const T& v) {
    REQUIRE(offset + sizeof(T) <= b.size());
    std::memcpy(b.data() + offset, &v, sizeof(T));
}

Elf64_Ehdr ehdr(const Bytes& b) {
    return load<Elf64_Ehdr>(b, 0);
}

std::uint64_t phdr_offset(const Bytes& b, std::size_t i) {
    const Elf64_Ehdr eh = ehdr(b);
    return eh.e_phoff + i * eh.e_phentsize;
}

std::vector<Elf64_Phdr> phdrs(const Bytes& b) {
    const Elf64_Ehdr eh = ehdr(b);
    REQUIRE(eh.e_phentsize == sizeof(Elf64_Phdr));
    std::vector<Elf64_Phdr> out;
    for (std::size_t i = 0; i < eh.e_phnum; ++i)
        out.push_back(load<Elf64_Phdr>(b, phdr_offset(b, i)));
    return out;
}

std::uint64_t shdr_offset(const Bytes& b, std::size_t i) {
    const Elf64_Ehdr eh = ehdr(b);
    return eh.e_shoff + i * eh.e_shentsize;
}

std::vector<Elf64_Shdr> shdrs(const Bytes& b) {
    const Elf64_Ehdr eh = ehdr(b);
    REQUIRE(eh.e_shentsize == sizeof(Elf64_Shdr));
    std::vector<Elf64_Shdr> out;
    for (std::size_t i = 0; i < eh.e_shnum; ++i)
        out.push_back(load<Elf64_Shdr>(b, shdr_offset(b, i)));
    return out;
}

// Index of the first PT_LOAD whose flags contain `flag`, or the first
// PT_LOAD without it when `with` is false.
std::size_t find_load(const Bytes& b, std::uint32_t flag, bool with) {
    auto ph = phdrs(b);
    for (std::size_t i = 0; i < ph.size(); ++i)
        if (ph[i].p_type == PT_LOAD && ((ph[i].p_flags & flag) != 0) == with)
            return i;
    FAIL("no such segment");
    return 0;
}

void patch_phdr(Bytes& b, std::size_t i, const std::function<void(Elf64_Phdr&)>& change) {
    auto ph = load<Elf64_Phdr>(b, phdr_offset(b, i));
    change(ph);
    store(b, phdr_offset(b, i), ph);
}

void patch_ehdr(Bytes& b, const std::function<void(Elf64_Ehdr&)>& change) {
    auto eh = ehdr(b);
    change(eh);
    store(b, 0, eh);
}

Result<StubImage> parse(const Bytes& b, Arch arch) {
    return parse_stub_elf(b, arch, "stub.elf");
}

} // namespace

TEST_CASE("stub: the embedded stubs parse and are laid out as documented") {
    for (Arch arch : kArches) {
        CAPTURE(arch_name(arch));
        auto stub = embedded_stub(arch);
        REQUIRE_MESSAGE(stub.has_value(), stub.error().message);
        CHECK(stub->arch == arch);
        CHECK(stub->base == SVMKIT_IMAGE_BASE);
        CHECK_FALSE(stub->text.empty());
        CHECK(stub->end % SVMKIT_PAGE_SIZE == 0);
        CHECK(stub->end > stub->base);
        if (!stub->rodata.empty()) {
            CHECK(stub->rodata_address >= stub->base + stub->text.size());
            CHECK(stub->rodata_address + stub->rodata.size() <= stub->end);
        }
        CHECK(stub->base + stub->text.size() <= stub->end);

        // The parsed segments are the file's bytes.
        const Bytes b = stub_copy(arch);
        const Elf64_Phdr text = phdrs(b)[find_load(b, PF_X, true)];
        CHECK(Bytes(b.begin() + static_cast<std::ptrdiff_t>(text.p_offset),
                    b.begin() + static_cast<std::ptrdiff_t>(text.p_offset + text.p_filesz)) ==
              stub->text);
    }
}

TEST_CASE("stub: the embedded ELF files keep the invariants") {
    for (Arch arch : kArches) {
        CAPTURE(arch_name(arch));
        const Bytes b = stub_copy(arch);
        REQUIRE(b.size() >= sizeof(Elf64_Ehdr));
        const Elf64_Ehdr eh = ehdr(b);
        CHECK(std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0);
        CHECK(eh.e_ident[EI_CLASS] == ELFCLASS64);
        CHECK(eh.e_ident[EI_DATA] == ELFDATA2LSB);
        CHECK(eh.e_type == ET_EXEC);
        CHECK(eh.e_machine == arch_elf_machine(arch));

        const std::uint64_t link = arch_link_va_base(arch) + SVMKIT_IMAGE_BASE;
        std::size_t text_segments = 0;
        std::uint64_t text_vaddr = 0;
        for (const Elf64_Phdr& ph : phdrs(b)) {
            CAPTURE(ph.p_type);
            CHECK(ph.p_type != PT_DYNAMIC);
            CHECK(ph.p_type != PT_INTERP);
            if (ph.p_type != PT_LOAD)
                continue;
            CHECK((ph.p_flags & PF_W) == 0);
            CHECK(ph.p_filesz == ph.p_memsz);
            CHECK(ph.p_vaddr >= link);
            if (ph.p_flags & PF_X) {
                ++text_segments;
                text_vaddr = ph.p_vaddr;
            }
        }
        CHECK(text_segments == 1);
        CHECK(text_vaddr == link);
        CHECK(eh.e_entry == text_vaddr);

        bool have_text_section = false;
        for (const Elf64_Shdr& sh : shdrs(b)) {
            CAPTURE(sh.sh_type);
            CHECK(sh.sh_type != SHT_REL);
            CHECK(sh.sh_type != SHT_RELA);
            CHECK(sh.sh_type != SHT_RELR);
            CHECK(sh.sh_type != SHT_DYNAMIC);
            CHECK(sh.sh_type != SHT_DYNSYM);
            if (sh.sh_flags & SHF_ALLOC)
                CHECK((sh.sh_flags & SHF_WRITE) == 0);
            if ((sh.sh_flags & SHF_EXECINSTR) && sh.sh_addr == link)
                have_text_section = true;
        }
        // The entry is the first byte of the code section too.
        CHECK(have_text_section);
    }
}

TEST_CASE("stub: readelf agrees: no relocations, no dynamic section, nothing writable") {
    if (!svmkit::test::have_tool("readelf")) {
        MESSAGE("readelf not installed; skipped");
        return;
    }
    svmkit::test::TempDir dir("stub");
    for (Arch arch : kArches) {
        CAPTURE(arch_name(arch));
        const std::string path = dir.file(std::string(arch_name(arch)) + ".elf");
        svmkit::test::write_bytes(path, embedded_stub_elf(arch));
        int status = 0;
        const std::string out = svmkit::test::run_capture("readelf -r -d -lW " + path, status);
        CAPTURE(out);
        REQUIRE(status == 0);
        CHECK(svmkit::test::contains(out, "There are no relocations in this file."));
        CHECK(svmkit::test::contains(out, "There is no dynamic section in this file."));
        CHECK_FALSE(svmkit::test::contains(out, "INTERP"));
        CHECK_FALSE(svmkit::test::contains(out, "DYNAMIC"));

        // Program header lines: LOAD off vaddr paddr filesz memsz FLAGS align.
        std::istringstream lines(out);
        std::string line;
        std::size_t loads = 0;
        while (std::getline(lines, line)) {
            std::istringstream words(line);
            std::vector<std::string> w;
            for (std::string x; words >> x;)
                w.push_back(x);
            if (w.empty() || w[0] != "LOAD")
                continue;
            ++loads;
            REQUIRE(w.size() >= 8);
            std::string flags;
            for (std::size_t i = 6; i + 1 < w.size(); ++i)
                flags += w[i];
            CAPTURE(line);
            CHECK(flags.find('R') != std::string::npos);
            CHECK(flags.find('W') == std::string::npos);
        }
        CHECK(loads >= 1);
        CHECK(loads <= 2);
    }
}

TEST_CASE("stub: parse_stub_elf refuses modified copies") {
    // Each subcase runs its check on a fresh copy of each embedded stub.
    auto each_arch = [](const std::function<void(Arch, const Bytes&, Arch)>& check) {
        for (Arch arch : kArches) {
            CAPTURE(arch_name(arch));
            const Bytes original = stub_copy(arch);
            REQUIRE(parse(original, arch).has_value());
            check(arch, original, arch == Arch::x86_64 ? Arch::ppc64le : Arch::x86_64);
        }
    };

    SUBCASE("wrong arch") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                check_error(parse(original, other), ExitCode::malformed,
                            fmt::format("stub.elf: not a 64-bit {} executable", arch_name(other)));
            });
    }
    SUBCASE("e_machine changed") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                patch_ehdr(b, [&](Elf64_Ehdr& eh) { eh.e_machine = arch_elf_machine(other); });
                check_error(parse(b, arch), ExitCode::malformed, "not a 64-bit");
                patch_ehdr(b, [&](Elf64_Ehdr& eh) { eh.e_machine = EM_AARCH64; });
                check_error(parse(b, arch), ExitCode::malformed, "not a 64-bit");
            });
    }
    SUBCASE("not an executable") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                patch_ehdr(b, [&](Elf64_Ehdr& eh) { eh.e_type = ET_DYN; });
                check_error(parse(b, arch), ExitCode::malformed, "not a 64-bit");
            });
    }
    SUBCASE("not an ELF file") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                b[1] = std::byte{'X'};
                check_error(parse(b, arch), ExitCode::malformed, "stub.elf: not an ELF file");
            });
    }
    SUBCASE("writable code segment") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                patch_phdr(b, find_load(b, PF_X, true), [](Elf64_Phdr& ph) { ph.p_flags |= PF_W; });
                check_error(parse(b, arch), ExitCode::malformed, "is writable");
            });
    }
    SUBCASE("writable data segment") {
        each_arch([]([[maybe_unused]] Arch arch, const Bytes& original,
                     [[maybe_unused]] Arch other) {
            Bytes b = original;
            patch_phdr(b, find_load(b, PF_X, false), [](Elf64_Phdr& ph) { ph.p_flags |= PF_W; });
            check_error(parse(b, arch), ExitCode::malformed, "is writable");
        });
    }
    SUBCASE("entry point moved") {
        each_arch([]([[maybe_unused]] Arch arch, const Bytes& original,
                     [[maybe_unused]] Arch other) {
            for (std::int64_t delta : {1, 4, -1, 0x10000}) {
                CAPTURE(delta);
                Bytes b = original;
                patch_ehdr(b, [&](Elf64_Ehdr& eh) {
                    eh.e_entry =
                        static_cast<std::uint64_t>(static_cast<std::int64_t>(eh.e_entry) + delta);
                });
                check_error(parse(b, arch), ExitCode::malformed,
                            "entry point is not the first byte of the code");
            }
        });
    }
    SUBCASE("dynamic or interpreter segment") {
        each_arch([]([[maybe_unused]] Arch arch, const Bytes& original,
                     [[maybe_unused]] Arch other) {
            for (std::uint32_t type : {std::uint32_t{PT_DYNAMIC}, std::uint32_t{PT_INTERP}}) {
                CAPTURE(type);
                Bytes b = original;
                patch_phdr(b, find_load(b, PF_X, false), [&](Elf64_Phdr& ph) { ph.p_type = type; });
                check_error(parse(b, arch), ExitCode::malformed, "must not be dynamically linked");
            }
        });
    }
    SUBCASE("relocation or dynamic section") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                for (std::uint32_t type : {std::uint32_t{SHT_RELA}, std::uint32_t{SHT_REL},
                                           std::uint32_t{SHT_RELR}, std::uint32_t{SHT_DYNAMIC}}) {
                    CAPTURE(type);
                    Bytes b = original;
                    // Turn the section header string table (unused by the parser) into one.
                    const std::uint64_t off = shdr_offset(b, ehdr(b).e_shstrndx);
                    auto sh = load<Elf64_Shdr>(b, off);
                    sh.sh_type = type;
                    store(b, off, sh);
                    check_error(parse(b, arch), ExitCode::malformed,
                                "has relocation or dynamic sections");
                }
            });
    }
    SUBCASE("zero-fill segment") {
        each_arch([]([[maybe_unused]] Arch arch, const Bytes& original,
                     [[maybe_unused]] Arch other) {
            Bytes b = original;
            patch_phdr(b, find_load(b, PF_X, false), [](Elf64_Phdr& ph) { ph.p_memsz += 0x100; });
            check_error(parse(b, arch), ExitCode::malformed, "has zero-fill (bss)");
        });
    }
    SUBCASE("segment outside the file") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                patch_phdr(b, find_load(b, PF_X, false), [&](Elf64_Phdr& ph) {
                    ph.p_offset = b.size() - 4;
                    ph.p_filesz = ph.p_memsz = 8;
                });
                check_error(parse(b, arch), ExitCode::malformed, "lies outside the file");
            });
    }
    SUBCASE("code not at the link address") {
        each_arch([]([[maybe_unused]] Arch arch, const Bytes& original,
                     [[maybe_unused]] Arch other) {
            Bytes b = original;
            patch_phdr(b, find_load(b, PF_X, true), [](Elf64_Phdr& ph) { ph.p_vaddr += 0x1000; });
            check_error(parse(b, arch), ExitCode::malformed, "code segment at the link address");
        });
    }
    SUBCASE("segment below the link address") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                patch_phdr(b, find_load(b, PF_X, false),
                           [](Elf64_Phdr& ph) { ph.p_vaddr = ph.p_vaddr - 0x100000; });
                check_error(parse(b, arch), ExitCode::malformed, "lies below the link address");
            });
    }
    SUBCASE("read-only data overlapping the code") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                const std::uint64_t text_vaddr = phdrs(b)[find_load(b, PF_X, true)].p_vaddr;
                patch_phdr(b, find_load(b, PF_X, false),
                           [&](Elf64_Phdr& ph) { ph.p_vaddr = ph.p_paddr = text_vaddr; });
                check_error(parse(b, arch), ExitCode::malformed, "overlaps the code");
            });
    }
    SUBCASE("segment address range wraps around") {
        each_arch(
            []([[maybe_unused]] Arch arch, const Bytes& original, [[maybe_unused]] Arch other) {
                Bytes b = original;
                patch_phdr(b, find_load(b, PF_X, false),
                           [](Elf64_Phdr& ph) { ph.p_vaddr = ph.p_paddr = ~0ull - 0x10; });
                check_error(parse(b, arch), ExitCode::malformed, "address range overflows");
            });
    }
    SUBCASE("two code segments") {
        each_arch([]([[maybe_unused]] Arch arch, const Bytes& original,
                     [[maybe_unused]] Arch other) {
            Bytes b = original;
            patch_phdr(b, find_load(b, PF_X, false), [](Elf64_Phdr& ph) { ph.p_flags |= PF_X; });
            check_error(parse(b, arch), ExitCode::malformed,
                        "expected one code segment at the link address");
        });
    }
}
