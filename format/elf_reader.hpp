// The one checked ELF64 reader of svmkit's host code: the secure-image reader
// (image_reader.cpp), the kernel input (kernel_input.cpp), the embedded stub
// (stub_image.cpp) and the simulated machine's guest programs
// (platform/guest_program.cpp) all read their headers through it. (The
// freestanding loader keeps its own, loader/elf_plan; the tamper composer and
// the libelf cross-checks in tests parse independently on purpose.)
//
// ElfFile::open()/parse() validate, once and before anything is returned:
//   - the ELF header: size, magic, ELFCLASS64, little-endian, EV_CURRENT in
//     e_ident and e_version, e_type and e_machine among those the caller
//     accepts, e_ehsize, e_phentsize, e_shentsize (when there are sections);
//   - the program and section header tables: counts within the caller's
//     limits, offset + size without wrap-around and inside the file;
//   - when the caller asks for section names: e_shstrndx, the name table
//     (a non-empty SHT_STRTAB inside the file, within a size limit, ending in
//     NUL) and every section's name inside it.
// Segment and section contents are checked where a caller uses them
// (segment_bytes(), section_bytes()), so that each caller keeps the order of
// its own rules; the arithmetic is here, once.
//
// Failures are an ElfError with a name and a message from one table, like
// loader/elf_plan's; elf_error() turns one into an Error naming the file
// (ExitCode::malformed, or the I/O error that stopped the read).
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"

#include <cstddef>
#include <cstdint>
#include <elf.h>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::format {

enum class ElfError : std::uint8_t {
    read_failed,                // the file could not be read (ElfFailure::io says why)
    truncated_header,           // shorter than an ELF64 header
    bad_magic,                  // not \x7fELF
    wrong_class,                // not ELFCLASS64
    wrong_endianness,           // not ELFDATA2LSB
    bad_version,                // e_ident[EI_VERSION] or e_version is not EV_CURRENT
    wrong_type,                 // e_type not among ElfRules::types
    wrong_machine,              // e_machine not among ElfRules::machines
    bad_ehsize,                 // e_ehsize != 64
    bad_phentsize,              // e_phentsize != 56
    bad_shentsize,              // sections present, e_shentsize != 64
    bad_program_header_count,   // e_phnum outside 1..ElfRules::max_program_headers
    bad_section_header_count,   // e_shnum outside ElfRules' section header range
    phdr_table_overflow,        // e_phoff + table size wraps around
    phdr_table_outside_file,    // the program header table runs past the end of the file
    shdr_table_overflow,        // e_shoff + table size wraps around
    shdr_table_outside_file,    // the section header table runs past the end of the file
    bad_shstrndx,               // e_shstrndx names no section
    bad_name_table,             // not a non-empty SHT_STRTAB inside the file and size limit
    name_table_unterminated,    // the name table's last byte is not NUL
    section_name_outside_table, // a section's sh_name lies outside the name table
    segment_offset_overflow,    // p_offset + p_filesz wraps around
    segment_outside_file,       // p_offset + p_filesz > file size
    section_offset_overflow,    // sh_offset + sh_size wraps around
    section_outside_file,       // sh_offset + sh_size > file size
    bad_symbol_table,           // SHT_SYMTAB with a wrong entry size, link or file range
    symbol_name_outside_table,  // a symbol's st_name lies outside its string table
};
inline constexpr std::size_t kElfErrorCount =
    static_cast<std::size_t>(ElfError::symbol_name_outside_table) + 1;

// One refusal. `value` is what the message names (a count, an index, a field
// value), `limit` the bound it broke where there is one, `name` the
// section's name when known.
struct ElfFailure {
    ElfError code = ElfError::read_failed;
    std::uint64_t value = 0;
    std::uint64_t limit = 0;
    std::string name;
    std::optional<Error> io; // read_failed: the I/O error
};

template <typename T>
using ElfResult = BasicResult<T, ElfFailure>;

// A stable identifier ("phdr_table_outside_file"), for tests and scripts.
const char* elf_error_name(ElfError e);
// The message of `f`, without the file name ("truncated: program headers run
// past the end of the file").
std::string elf_failure_text(const ElfFailure& f);
// "<path>: <message>" with ExitCode::malformed; the I/O error itself for
// read_failed.
Error elf_error(const std::string& path, const ElfFailure& f);
// The same with a caller's wording of the refusal ("<path>: <text>"); the
// I/O error itself for read_failed.
Error elf_error(const std::string& path, const ElfFailure& f, std::string_view text);

// What a caller accepts beyond the ELF64 little-endian format itself.
struct ElfRules {
    std::vector<std::uint16_t> types;    // accepted e_type values
    std::vector<std::uint16_t> machines; // accepted e_machine values; empty: any
    std::uint16_t max_program_headers = 64;
    std::uint16_t min_section_headers = 0; // 1 or more: the file must have sections
    std::uint16_t max_section_headers = 4096;
    // Read and check the section name table and every section's name.
    bool section_names = false;
    std::uint64_t max_name_table_size = 1 << 20;
};

// A byte range of the file, checked to lie inside it.
struct FileRange {
    std::uint64_t offset = 0, size = 0;
};

class ElfFile {
  public:
    // Reads the headers of `file` (only they are read). The InputFile must
    // outlive the ElfFile when symbol_value() is used.
    static ElfResult<ElfFile> open(const InputFile& file, const ElfRules& rules);
    // The same for a file in memory; `bytes` must outlive the ElfFile when
    // symbol_value() is used.
    static ElfResult<ElfFile> parse(std::span<const std::byte> bytes, const ElfRules& rules);

    [[nodiscard]] std::uint64_t file_size() const { return size_; }
    [[nodiscard]] const Elf64_Ehdr& header() const { return header_; }
    [[nodiscard]] std::span<const Elf64_Phdr> program_headers() const { return phdrs_; }
    [[nodiscard]] std::span<const Elf64_Shdr> section_headers() const { return shdrs_; }

    // The name of section `index` (ElfRules::section_names; "" without).
    [[nodiscard]] std::string_view section_name(std::size_t index) const;
    // The first section called `name`, or null (ElfRules::section_names).
    [[nodiscard]] const Elf64_Shdr* section(std::string_view name) const;

    // The file bytes of program header `index` ([p_offset, + p_filesz)) and
    // of section header `index` ([sh_offset, + sh_size)), checked to lie in
    // the file. `index` must be below the table's size.
    [[nodiscard]] ElfResult<FileRange> segment_bytes(std::size_t index) const;
    [[nodiscard]] ElfResult<FileRange> section_bytes(std::size_t index) const;

    // The value of the first symbol called `name` in the SHT_SYMTAB sections,
    // or nullopt; every symbol table read is checked (entry size, its string
    // table, both inside the file, every name inside its table).
    [[nodiscard]] ElfResult<std::optional<std::uint64_t>> symbol_value(std::string_view name) const;

  private:
    ElfFile() = default;
    ElfResult<void> read(std::uint64_t offset, std::span<std::byte> out) const;
    ElfResult<void> check_header(const ElfRules& rules) const;
    ElfResult<void> read_tables(const ElfRules& rules);
    ElfResult<void> read_names(const ElfRules& rules);
    ElfResult<std::vector<char>> read_string_table(std::size_t index) const;

    const InputFile* file_ = nullptr;  // the source: a file,
    std::span<const std::byte> bytes_; // or bytes in memory
    std::uint64_t size_ = 0;
    Elf64_Ehdr header_{};
    std::vector<Elf64_Phdr> phdrs_;
    std::vector<Elf64_Shdr> shdrs_;
    std::vector<char> names_; // the section name table; NUL-terminated when not empty
};

} // namespace svmkit::format
