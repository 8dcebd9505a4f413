// The host's one ELF reader (format/elf_reader.hpp): a small valid ELF64 file
// built here field by field is accepted and read back through the typed
// views; each ElfError is produced by the one edit that causes it.
#include "format/elf_reader.hpp"
#include "test_support.hpp"

#include <cstring>
#include <doctest/doctest.h>
#include <filesystem>
#include <functional>
#include <set>

using namespace svmkit;
using namespace svmkit::format;

namespace {

using Bytes = std::vector<std::byte>;

// Layout of the sample: header, one program header, .text, the section name
// table, a symbol table with its string table, then five section headers
// (null, .text, .shstrtab, .symtab, .strtab).
constexpr std::uint64_t kPhoff = 64;
constexpr std::uint64_t kText = 128, kTextSize = 16;
constexpr char kNames[] = "\0.text\0.shstrtab\0.symtab\0.strtab"; // + the final NUL
constexpr std::uint64_t kNamesOff = kText + kTextSize, kNamesSize = sizeof kNames;
constexpr char kStrings[] = "\0__stub_end";
constexpr std::uint64_t kSymOff = 192, kSymSize = 2 * sizeof(Elf64_Sym);
constexpr std::uint64_t kStrOff = kSymOff + kSymSize, kStrSize = sizeof kStrings;
constexpr std::uint64_t kShoff = 256, kShnum = 5;
constexpr std::uint64_t kFileSize = kShoff + kShnum * sizeof(Elf64_Shdr);

template <typename T>
T load(const Bytes& b, std::uint64_t off) {
    T v;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}
template <typename T>
void store(Bytes& b, std::uint64_t off, const T& v) {
    std::memcpy(b.data() + off, &v, sizeof v);
}

Bytes sample() {
    Bytes b(kFileSize);
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x1000;
    eh.e_phoff = kPhoff;
    eh.e_shoff = kShoff;
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = kShnum;
    eh.e_shstrndx = 2;
    store(b, 0, eh);
    store(b, kPhoff,
          Elf64_Phdr{PT_LOAD, PF_R | PF_X, kText, 0x1000, 0x1000, kTextSize, kTextSize, 16});
    for (std::uint64_t i = 0; i < kTextSize; ++i)
        b[kText + i] = std::byte{0x90};
    std::memcpy(b.data() + kNamesOff, kNames, kNamesSize);
    store(b, kSymOff + sizeof(Elf64_Sym), Elf64_Sym{1, 0, 0, 1, 0x1234, 0});
    std::memcpy(b.data() + kStrOff, kStrings, kStrSize);
    const Elf64_Shdr shdrs[kShnum] = {
        {},
        {1, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0x1000, kText, kTextSize, 0, 0, 16, 0},
        {7, SHT_STRTAB, 0, 0, kNamesOff, kNamesSize, 0, 0, 1, 0},
        {17, SHT_SYMTAB, 0, 0, kSymOff, kSymSize, 4, 1, 8, sizeof(Elf64_Sym)},
        {25, SHT_STRTAB, 0, 0, kStrOff, kStrSize, 0, 0, 1, 0},
    };
    for (std::uint64_t i = 0; i < kShnum; ++i)
        store(b, kShoff + i * sizeof(Elf64_Shdr), shdrs[i]);
    return b;
}

ElfRules rules() {
    return ElfRules{.types = {ET_EXEC},
                    .machines = {EM_X86_64, EM_PPC64},
                    .max_program_headers = 4,
                    .min_section_headers = 1,
                    .max_section_headers = 8,
                    .section_names = true,
                    .max_name_table_size = 64};
}

void edit_header(Bytes& b, const std::function<void(Elf64_Ehdr&)>& edit) {
    auto eh = load<Elf64_Ehdr>(b, 0);
    edit(eh);
    store(b, 0, eh);
}
void edit_phdr(Bytes& b, const std::function<void(Elf64_Phdr&)>& edit) {
    auto ph = load<Elf64_Phdr>(b, kPhoff);
    edit(ph);
    store(b, kPhoff, ph);
}
void edit_shdr(Bytes& b, std::uint64_t i, const std::function<void(Elf64_Shdr&)>& edit) {
    const std::uint64_t off = kShoff + i * sizeof(Elf64_Shdr);
    auto sh = load<Elf64_Shdr>(b, off);
    edit(sh);
    store(b, off, sh);
}

// The error parse() gives for `b` (fails the test when it accepts).
ElfFailure refusal(const Bytes& b, const ElfRules& r = rules()) {
    auto elf = ElfFile::parse(b, r);
    REQUIRE_FALSE(elf.has_value());
    return elf.error();
}

void check_refusal(const Bytes& b, ElfError expected, std::string_view text,
                   const ElfRules& r = rules()) {
    const ElfFailure f = refusal(b, r);
    CHECK(elf_error_name(f.code) == std::string_view(elf_error_name(expected)));
    CHECK(elf_failure_text(f) == text);
}

} // namespace

TEST_CASE("elf reader: a valid file and its typed views") {
    const Bytes b = sample();
    auto elf = ElfFile::parse(b, rules());
    REQUIRE(elf.has_value());
    CHECK(elf->file_size() == kFileSize);
    CHECK(elf->header().e_entry == 0x1000);
    REQUIRE(elf->program_headers().size() == 1);
    CHECK(elf->program_headers()[0].p_paddr == 0x1000);
    REQUIRE(elf->section_headers().size() == kShnum);
    CHECK(elf->section_name(0).empty());
    CHECK(elf->section_name(1) == ".text");
    CHECK(elf->section_name(4) == ".strtab");
    const Elf64_Shdr* text = elf->section(".text");
    REQUIRE(text != nullptr);
    CHECK(text->sh_offset == kText);
    CHECK(elf->section(".data") == nullptr);
    auto seg = elf->segment_bytes(0);
    REQUIRE(seg.has_value());
    CHECK(seg->offset == kText);
    CHECK(seg->size == kTextSize);
    auto sec = elf->section_bytes(2);
    REQUIRE(sec.has_value());
    CHECK(sec->offset == kNamesOff);
    auto sym = elf->symbol_value("__stub_end");
    REQUIRE(sym.has_value());
    CHECK(*sym == std::optional<std::uint64_t>(0x1234));
    auto missing = elf->symbol_value("__stub_start");
    REQUIRE(missing.has_value());
    CHECK_FALSE(missing->has_value());
}

TEST_CASE("elf reader: without section names, names are neither read nor checked") {
    Bytes b = sample();
    edit_header(b, [](Elf64_Ehdr& eh) { eh.e_shstrndx = 0; });
    ElfRules r = rules();
    r.section_names = false;
    auto elf = ElfFile::parse(b, r);
    REQUIRE(elf.has_value());
    CHECK(elf->section_name(1).empty());
    CHECK(elf->section(".text") == nullptr);
    // A file without sections is fine when the rules allow it.
    edit_header(b, [](Elf64_Ehdr& eh) {
        eh.e_shnum = 0;
        eh.e_shentsize = 0;
    });
    r.min_section_headers = 0;
    elf = ElfFile::parse(b, r);
    REQUIRE(elf.has_value());
    CHECK(elf->section_headers().empty());
}

TEST_CASE("elf reader: the file is read from disk headers first, and a read error is passed on") {
    test::TempDir dir("elf-reader");
    const std::string path = dir.file("a.elf");
    test::write_bytes(path, sample());
    auto file = InputFile::open(path);
    REQUIRE(file.has_value());
    auto elf = ElfFile::open(*file, rules());
    REQUIRE(elf.has_value());
    CHECK(elf->section_name(3) == ".symtab");
    CHECK(**elf->symbol_value("__stub_end") == 0x1234);

    // The file shrinks after it was opened: the reader's read fails and the
    // I/O error is what the caller gets.
    std::filesystem::resize_file(path, 100);
    auto shrunk = ElfFile::open(*file, rules());
    REQUIRE_FALSE(shrunk.has_value());
    CHECK(shrunk.error().code == ElfError::read_failed);
    REQUIRE(shrunk.error().io.has_value());
    const Error e = elf_error(path, shrunk.error());
    CHECK(e.message == shrunk.error().io->message);
    CHECK(test::contains(e.message, "a.elf"));
}

TEST_CASE("elf reader: header refusals") {
    SUBCASE("truncated header") {
        Bytes b = sample();
        b.resize(63);
        check_refusal(b, ElfError::truncated_header,
                      "truncated: 63 bytes is smaller than an ELF header");
        check_refusal({}, ElfError::truncated_header,
                      "truncated: 0 bytes is smaller than an ELF header");
    }
    SUBCASE("bad magic") {
        Bytes b = sample();
        b[3] = std::byte{'G'};
        check_refusal(b, ElfError::bad_magic, "not an ELF file (bad magic)");
    }
    SUBCASE("wrong class") {
        Bytes b = sample();
        b[EI_CLASS] = std::byte{ELFCLASS32};
        check_refusal(b, ElfError::wrong_class, "not a 64-bit ELF file");
    }
    SUBCASE("wrong endianness") {
        Bytes b = sample();
        b[EI_DATA] = std::byte{ELFDATA2MSB};
        check_refusal(b, ElfError::wrong_endianness, "not a little-endian ELF file");
    }
    SUBCASE("bad version, in e_ident or e_version") {
        Bytes b = sample();
        b[EI_VERSION] = std::byte{2};
        check_refusal(b, ElfError::bad_version, "unknown ELF version");
        b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_version = 0; });
        check_refusal(b, ElfError::bad_version, "unknown ELF version");
    }
    SUBCASE("wrong type") {
        Bytes b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_type = ET_DYN; });
        check_refusal(b, ElfError::wrong_type, "not an ELF executable");
        ElfRules r = rules();
        r.types.push_back(ET_DYN);
        CHECK(ElfFile::parse(b, r).has_value());
    }
    SUBCASE("wrong machine") {
        Bytes b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_machine = EM_AARCH64; });
        check_refusal(b, ElfError::wrong_machine, "unsupported ELF machine 183");
        ElfRules any = rules();
        any.machines.clear();
        CHECK(ElfFile::parse(b, any).has_value());
    }
    SUBCASE("entry sizes") {
        Bytes b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_ehsize = 52; });
        check_refusal(b, ElfError::bad_ehsize,
                      "unexpected ELF header or table entry sizes (e_ehsize 52)");
        b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_phentsize = 32; });
        check_refusal(b, ElfError::bad_phentsize,
                      "unexpected ELF header or table entry sizes (e_phentsize 32)");
        b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_shentsize = 40; });
        check_refusal(b, ElfError::bad_shentsize,
                      "unexpected ELF header or table entry sizes (e_shentsize 40)");
    }
    SUBCASE("program header count") {
        Bytes b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_phnum = 0; });
        check_refusal(b, ElfError::bad_program_header_count, "0 program headers (expected 1..4)");
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_phnum = 5; });
        check_refusal(b, ElfError::bad_program_header_count, "5 program headers (expected 1..4)");
    }
    SUBCASE("section header count") {
        Bytes b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_shnum = 0; });
        check_refusal(b, ElfError::bad_section_header_count, "0 section headers (expected 1..8)");
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_shnum = 9; });
        check_refusal(b, ElfError::bad_section_header_count, "9 section headers (expected 1..8)");
    }
}

TEST_CASE("elf reader: header tables outside the file") {
    SUBCASE("program header table past the end, and wrapping around") {
        Bytes b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_phoff = kFileSize - sizeof(Elf64_Phdr) + 1; });
        check_refusal(b, ElfError::phdr_table_outside_file,
                      "truncated: program headers run past the end of the file");
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_phoff = ~std::uint64_t{0} - 8; });
        check_refusal(b, ElfError::phdr_table_overflow,
                      "truncated: program headers run past the end of the file (offset + size "
                      "overflows)");
    }
    SUBCASE("section header table past the end, and wrapping around") {
        Bytes b = sample();
        b.resize(kFileSize - 1);
        check_refusal(b, ElfError::shdr_table_outside_file,
                      "truncated: section headers run past the end of the file");
        b = sample();
        edit_header(b, [](Elf64_Ehdr& eh) { eh.e_shoff = ~std::uint64_t{0} - 100; });
        check_refusal(b, ElfError::shdr_table_overflow,
                      "truncated: section headers run past the end of the file (offset + size "
                      "overflows)");
    }
}

TEST_CASE("elf reader: section name refusals") {
    SUBCASE("name table index") {
        for (std::uint16_t index : {std::uint16_t{0}, std::uint16_t{kShnum}}) {
            Bytes b = sample();
            edit_header(b, [&](Elf64_Ehdr& eh) { eh.e_shstrndx = index; });
            check_refusal(b, ElfError::bad_shstrndx,
                          fmt::format("bad section name table index {}", index));
        }
    }
    SUBCASE("name table not a string table, empty, too large, or outside the file") {
        const std::vector<std::function<void(Elf64_Shdr&)>> edits = {
            [](Elf64_Shdr& s) { s.sh_type = SHT_PROGBITS; },
            [](Elf64_Shdr& s) { s.sh_size = 0; },
            [](Elf64_Shdr& s) { s.sh_size = 65; },
            [](Elf64_Shdr& s) { s.sh_offset = kFileSize - 10; },
            [](Elf64_Shdr& s) { s.sh_offset = ~std::uint64_t{0} - 4; },
        };
        for (std::size_t i = 0; i < edits.size(); ++i) {
            CAPTURE(i);
            Bytes b = sample();
            edit_shdr(b, 2, edits[i]);
            check_refusal(b, ElfError::bad_name_table,
                          "section name table lies outside the file or is invalid");
        }
    }
    SUBCASE("name table not terminated") {
        Bytes b = sample();
        b[kNamesOff + kNamesSize - 1] = std::byte{'x'};
        check_refusal(b, ElfError::name_table_unterminated, "section name table is not terminated");
    }
    SUBCASE("a section's name outside the table") {
        Bytes b = sample();
        edit_shdr(b, 3, [](Elf64_Shdr& s) { s.sh_name = kNamesSize; });
        check_refusal(b, ElfError::section_name_outside_table,
                      "section 3 name lies outside the name table");
        // Section 0 has no name to check.
        b = sample();
        edit_shdr(b, 0, [](Elf64_Shdr& s) { s.sh_name = 0xffff; });
        CHECK(ElfFile::parse(b, rules()).has_value());
    }
}

TEST_CASE("elf reader: segment and section bytes are checked where they are used") {
    SUBCASE("segment past the end of the file, and wrapping around") {
        Bytes b = sample();
        edit_phdr(b, [](Elf64_Phdr& p) { p.p_filesz = kFileSize - kText + 1; });
        auto elf = ElfFile::parse(b, rules());
        REQUIRE(elf.has_value());
        auto r = elf->segment_bytes(0);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ElfError::segment_outside_file);
        CHECK(elf_failure_text(r.error()) == "truncated: segment 0 runs past the end of the file");
        edit_phdr(b, [](Elf64_Phdr& p) { p.p_offset = ~std::uint64_t{0}; });
        elf = ElfFile::parse(b, rules());
        REQUIRE(elf.has_value());
        r = elf->segment_bytes(0);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ElfError::segment_offset_overflow);
        CHECK(elf_failure_text(r.error()) ==
              "truncated: segment 0 runs past the end of the file (offset + size overflows)");
    }
    SUBCASE("section past the end of the file, and wrapping around; named when it can be") {
        Bytes b = sample();
        edit_shdr(b, 1, [](Elf64_Shdr& s) { s.sh_size = kFileSize; });
        auto elf = ElfFile::parse(b, rules());
        REQUIRE(elf.has_value());
        auto r = elf->section_bytes(1);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ElfError::section_outside_file);
        CHECK(elf_failure_text(r.error()) ==
              "truncated: section '.text' runs past the end of the file");
        CHECK(elf_error("k.elf", r.error()).message ==
              "k.elf: truncated: section '.text' runs past the end of the file");
        CHECK(elf_error("k.elf", r.error()).code == ExitCode::malformed);

        edit_shdr(b, 1, [](Elf64_Shdr& s) { s.sh_offset = ~std::uint64_t{0} - 1; });
        ElfRules unnamed = rules();
        unnamed.section_names = false;
        elf = ElfFile::parse(b, unnamed);
        REQUIRE(elf.has_value());
        r = elf->section_bytes(1);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ElfError::section_offset_overflow);
        CHECK(elf_failure_text(r.error()) ==
              "truncated: section '#1' runs past the end of the file (offset + size overflows)");
    }
}

TEST_CASE("elf reader: symbol table refusals") {
    const std::vector<std::pair<const char*, std::function<void(Bytes&)>>> bad_tables = {
        {"entry size",
         [](Bytes& b) {
             edit_shdr(b, 3, [](Elf64_Shdr& s) { s.sh_entsize = 16; });
         }},
        {"size not a multiple",
         [](Bytes& b) {
             edit_shdr(b, 3, [](Elf64_Shdr& s) { s.sh_size = kSymSize - 1; });
         }},
        {"outside the file",
         [](Bytes& b) {
             edit_shdr(b, 3, [](Elf64_Shdr& s) { s.sh_offset = kFileSize; });
         }},
        {"link to nothing",
         [](Bytes& b) {
             edit_shdr(b, 3, [](Elf64_Shdr& s) { s.sh_link = kShnum; });
         }},
        {"link to a non-string table",
         [](Bytes& b) {
             edit_shdr(b, 3, [](Elf64_Shdr& s) { s.sh_link = 1; });
         }},
        {"string table outside the file",
         [](Bytes& b) {
             edit_shdr(b, 4, [](Elf64_Shdr& s) { s.sh_size = kFileSize; });
         }},
        {"string table not terminated",
         [](Bytes& b) {
             b[kStrOff + kStrSize - 1] = std::byte{'x'};
         }},
    };
    for (const auto& [what, edit] : bad_tables) {
        CAPTURE(what);
        Bytes b = sample();
        edit(b);
        auto elf = ElfFile::parse(b, rules());
        REQUIRE(elf.has_value());
        auto r = elf->symbol_value("__stub_end");
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ElfError::bad_symbol_table);
        CHECK(elf_failure_text(r.error()) ==
              "symbol table (section 3) has a bad entry size, string table or file range");
    }
    SUBCASE("a symbol's name outside its string table") {
        Bytes b = sample();
        store(b, kSymOff + sizeof(Elf64_Sym), Elf64_Sym{kStrSize, 0, 0, 1, 0x1234, 0});
        auto elf = ElfFile::parse(b, rules());
        REQUIRE(elf.has_value());
        auto r = elf->symbol_value("__stub_end");
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ElfError::symbol_name_outside_table);
        CHECK(elf_failure_text(r.error()) == "symbol 1 name lies outside its string table");
    }
}

TEST_CASE("elf reader: every error has its own name and message") {
    std::set<std::string> names, messages;
    for (std::size_t i = 0; i < kElfErrorCount; ++i) {
        const auto e = static_cast<ElfError>(i);
        const std::string name = elf_error_name(e);
        CAPTURE(name);
        CHECK(name != "unknown");
        CHECK(names.insert(name).second);
        const ElfFailure f{e, 1, 2, "s", std::nullopt};
        CHECK(messages.insert(elf_failure_text(f)).second);
        CHECK(elf_error("dir/f.elf", f).message.starts_with("dir/f.elf: "));
    }
}
