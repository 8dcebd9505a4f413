// Unit tests for what only the ppc64le stub must guarantee, read from the
// stub ELF embedded in svmkit (stub/ppc64le/entry.S, stub/stub.lds.S):
//   - its first instructions switch a big-endian CPU (SLOF's) to little-endian
//     and are harmless to a little-endian one;
//   - a kexec's secondary CPUs find a hold loop at offset 0x60;
//   - it runs wherever it is loaded (QEMU loads it 4 MiB above its link
//     address): no code sets the TOC pointer r2 from an absolute address, and
//     every function's ELFv2 global entry derives r2 from r12, its own
//     address.
#include "format/stub_image.hpp"

#include <doctest/doctest.h>
#include <elf.h>

#include <cstring>
#include <string>
#include <vector>

using namespace svmkit;
using namespace svmkit::format;

namespace {

using Bytes = std::vector<std::byte>;

template <typename T>
T load(const Bytes& b, std::uint64_t offset) {
    REQUIRE(offset + sizeof(T) <= b.size());
    T v;
    std::memcpy(&v, b.data() + offset, sizeof(T));
    return v;
}

Bytes stub_elf() {
    const auto elf = embedded_stub_elf(Arch::ppc64le);
    return Bytes(elf.begin(), elf.end());
}

struct Code {
    std::uint64_t vaddr = 0;  // of the code segment
    std::uint64_t offset = 0; // in the file
    std::uint64_t size = 0;
};

Code code_segment(const Bytes& b) {
    const auto eh = load<Elf64_Ehdr>(b, 0);
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        const auto ph = load<Elf64_Phdr>(b, eh.e_phoff + i * sizeof(Elf64_Phdr));
        if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) != 0)
            return Code{ph.p_vaddr, ph.p_offset, ph.p_filesz};
    }
    FAIL("no code segment");
    return {};
}

// The instruction at `at` in the code (the host is little-endian, as the
// stub); 0, which is no instruction, outside it.
std::uint32_t word(const Bytes& b, const Code& c, std::uint64_t at) {
    std::uint32_t w = 0;
    if (at + 4 <= c.size && c.offset + at + 4 <= b.size())
        std::memcpy(&w, b.data() + c.offset + at, 4);
    return w;
}

// addis rT,rA,imm (lis when rA = 0) and addi rT,rA,imm, by register fields.
constexpr std::uint32_t kAddis = 15u << 26;
constexpr std::uint32_t kAddi = 14u << 26;
constexpr std::uint32_t insn_rt_ra(std::uint32_t op, unsigned rt, unsigned ra) {
    return op | (rt << 21) | (ra << 16);
}

// Offsets in the code of the functions with an ELFv2 global entry that sets
// up r2 (st_other bits 5..7 = 3: the local entry lies 8 bytes further on).
std::vector<std::uint64_t> global_entries(const Bytes& b) {
    const Code c = code_segment(b);
    const auto eh = load<Elf64_Ehdr>(b, 0);
    std::vector<std::uint64_t> out;
    for (unsigned i = 0; i < eh.e_shnum; ++i) {
        const auto sh = load<Elf64_Shdr>(b, eh.e_shoff + i * sizeof(Elf64_Shdr));
        if (sh.sh_type != SHT_SYMTAB)
            continue;
        for (std::uint64_t s = 0; s + sizeof(Elf64_Sym) <= sh.sh_size; s += sizeof(Elf64_Sym)) {
            const auto sym = load<Elf64_Sym>(b, sh.sh_offset + s);
            if (ELF64_ST_TYPE(sym.st_info) == STT_FUNC && ((sym.st_other >> 5) & 7) == 3)
                out.push_back(sym.st_value - c.vaddr);
        }
    }
    return out;
}

// Every way the code sets r2 from an absolute address, as messages.
std::vector<std::string> absolute_toc_setups(const Bytes& b) {
    std::vector<std::string> problems;
    const Code c = code_segment(b);
    for (std::uint64_t at = 0; at + 4 <= c.size; at += 4)
        if ((word(b, c, at) & 0xffff0000u) == insn_rt_ra(kAddis, 2, 0))
            problems.push_back(fmt::format("lis r2 at +{:#x}", at));
    const auto entries = global_entries(b);
    for (std::uint64_t at : entries)
        if ((word(b, c, at) & 0xffff0000u) != insn_rt_ra(kAddis, 2, 12) ||
            (word(b, c, at + 4) & 0xffff0000u) != insn_rt_ra(kAddi, 2, 2))
            problems.push_back(fmt::format("the global entry at +{:#x} does not use r12", at));
    // Not vacuous: the stub and Debian's libz/libfdt have many.
    if (entries.size() < 10)
        problems.push_back(fmt::format("only {} global entries found", entries.size()));
    return problems;
}

} // namespace

TEST_CASE("ppc64le stub: the first instructions switch a big-endian CPU to little-endian") {
    const Bytes b = stub_elf();
    const Code c = code_segment(b);
    // Little-endian: tdi 0,0,0x48 (never traps). Its bytes read big-endian
    // are 0x48000008, `b .+8`, into the big-endian part.
    CHECK(word(b, c, 0) == 0x08000048u);
    CHECK(__builtin_bswap32(word(b, c, 0)) == 0x48000008u);
    // Little-endian: word 1 branches past the big-endian part (b, forward).
    CHECK((word(b, c, 4) & 0xfc000003u) == 0x48000000u);
    CHECK((word(b, c, 4) & 0x03fffffcu) >= 0x2cu);
    // Big-endian: mfmsr r11; xori r11,r11,1 (MSR[LE]); ... mtsrr1 r11; rfid.
    const std::uint32_t big_endian[] = {0x7d6000a6, 0x696b0001, 0x39400000, 0x7d410164, 0x429f0005,
                                        0x7d4802a6, 0x394a0014, 0x7d5a03a6, 0x7d7b03a6, 0x4c000024};
    for (std::size_t i = 0; i < std::size(big_endian); ++i) {
        CAPTURE(i);
        CHECK(__builtin_bswap32(word(b, c, 8 + 4 * i)) == big_endian[i]);
    }
}

TEST_CASE("ppc64le stub: a kexec's secondary CPUs find a hold loop at 0x60") {
    // A kexec copies an image's first 0x100 bytes to address 0 and sends the
    // secondary CPUs to 0x60, big-endian (Linux's kexec_wait clears MSR[LE]);
    // the kernel the stub unpacks there replaces the loop with its own
    // secondary hold. The loop holds a CPU in either byte order.
    const Bytes b = stub_elf();
    const auto c = code_segment(b);
    CHECK(word(b, c, 0x60) == 0x08000048u);                    // tdi 0,0,0x48 (LE)
    CHECK(__builtin_bswap32(word(b, c, 0x60)) == 0x48000008u); // b .+8 (BE)
    CHECK(word(b, c, 0x64) == 0x4bfffffcu);                    // b .-4 (LE)
    CHECK(__builtin_bswap32(word(b, c, 0x68)) == 0x48000000u); // b . (BE)
}

TEST_CASE("ppc64le stub: kexec-tools' purgatory finds zero where it stores its run_at_load flag") {
    // kexec-tools' purgatory stores its run_at_load word at entry + 0x5c,
    // Linux's __run_at_load, before it jumps: inside the stub's signed code.
    // The word comes from the image's own first 0x100 bytes (a crash kernel
    // whose word is Linux's run-at-zero magic gets 1): a zero word there
    // stays what was signed.
    const Bytes b = stub_elf();
    CHECK(word(b, code_segment(b), 0x5c) == 0u);
}

TEST_CASE("ppc64le stub: position independent, r2 never comes from an absolute address") {
    const Bytes b = stub_elf();
    const auto problems = absolute_toc_setups(b);
    CHECK_MESSAGE(problems.empty(), fmt::format("{}", fmt::join(problems, "; ")));

    SUBCASE("the check finds an absolute global entry") {
        // What a non-PIE link makes of an ELFv2 global entry: lis r2,.TOC.@ha.
        Bytes patched = b;
        const auto entries = global_entries(b);
        REQUIRE_FALSE(entries.empty());
        const std::uint32_t lis = insn_rt_ra(kAddis, 2, 0) | 0x0403;
        std::memcpy(patched.data() + code_segment(b).offset + entries[0], &lis, 4);
        const auto found = absolute_toc_setups(patched);
        CHECK(found.size() == 2); // the lis itself, and the global entry it broke
    }
}
