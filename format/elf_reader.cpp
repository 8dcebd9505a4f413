#include "format/elf_reader.hpp"

#include "base/checked.hpp"

#include <algorithm>
#include <cstring>

namespace svmkit::format {

namespace {

struct ErrorText {
    const char* name;
    // fmt text; {value}, {limit} and {name} stand for ElfFailure's fields.
    const char* message;
};

ErrorText error_text(ElfError e) {
    switch (e) {
    case ElfError::read_failed:
        return {"read_failed", "the file could not be read"};
    case ElfError::truncated_header:
        return {"truncated_header", "truncated: {value} bytes is smaller than an ELF header"};
    case ElfError::bad_magic:
        return {"bad_magic", "not an ELF file (bad magic)"};
    case ElfError::wrong_class:
        return {"wrong_class", "not a 64-bit ELF file"};
    case ElfError::wrong_endianness:
        return {"wrong_endianness", "not a little-endian ELF file"};
    case ElfError::bad_version:
        return {"bad_version", "unknown ELF version"};
    case ElfError::wrong_type:
        return {"wrong_type", "not an ELF executable"};
    case ElfError::wrong_machine:
        return {"wrong_machine", "unsupported ELF machine {value}"};
    case ElfError::bad_ehsize:
        return {"bad_ehsize", "unexpected ELF header or table entry sizes (e_ehsize {value})"};
    case ElfError::bad_phentsize:
        return {"bad_phentsize",
                "unexpected ELF header or table entry sizes (e_phentsize {value})"};
    case ElfError::bad_shentsize:
        return {"bad_shentsize",
                "unexpected ELF header or table entry sizes (e_shentsize {value})"};
    case ElfError::bad_program_header_count:
        return {"bad_program_header_count", "{value} program headers (expected 1..{limit})"};
    case ElfError::bad_section_header_count:
        return {"bad_section_header_count", "{value} section headers (expected {name}..{limit})"};
    case ElfError::phdr_table_overflow:
        return {"phdr_table_overflow", "truncated: program headers run past the end of the file "
                                       "(offset + size overflows)"};
    case ElfError::phdr_table_outside_file:
        return {"phdr_table_outside_file",
                "truncated: program headers run past the end of the file"};
    case ElfError::shdr_table_overflow:
        return {"shdr_table_overflow", "truncated: section headers run past the end of the file "
                                       "(offset + size overflows)"};
    case ElfError::shdr_table_outside_file:
        return {"shdr_table_outside_file",
                "truncated: section headers run past the end of the file"};
    case ElfError::bad_shstrndx:
        return {"bad_shstrndx", "bad section name table index {value}"};
    case ElfError::bad_name_table:
        return {"bad_name_table", "section name table lies outside the file or is invalid"};
    case ElfError::name_table_unterminated:
        return {"name_table_unterminated", "section name table is not terminated"};
    case ElfError::section_name_outside_table:
        return {"section_name_outside_table", "section {value} name lies outside the name table"};
    case ElfError::segment_offset_overflow:
        return {"segment_offset_overflow", "truncated: segment {value} runs past the end of the "
                                           "file (offset + size overflows)"};
    case ElfError::segment_outside_file:
        return {"segment_outside_file", "truncated: segment {value} runs past the end of the file"};
    case ElfError::section_offset_overflow:
        return {"section_offset_overflow", "truncated: section '{name}' runs past the end of the "
                                           "file (offset + size overflows)"};
    case ElfError::section_outside_file:
        return {"section_outside_file",
                "truncated: section '{name}' runs past the end of the file"};
    case ElfError::bad_symbol_table:
        return {"bad_symbol_table",
                "symbol table (section {value}) has a bad entry size, string table or file range"};
    case ElfError::symbol_name_outside_table:
        return {"symbol_name_outside_table", "symbol {value} name lies outside its string table"};
    }
    return {"unknown", "unknown ELF error"};
}

Unexpected<ElfFailure> refuse(ElfError code, std::uint64_t value = 0, std::uint64_t limit = 0,
                              std::string name = {}) {
    return Unexpected<ElfFailure>(ElfFailure{code, value, limit, std::move(name), std::nullopt});
}

// [offset, offset + size) inside a file of `file_size` bytes, or which of the
// two errors it is.
std::optional<ElfError> range_error(std::uint64_t offset, std::uint64_t size,
                                    std::uint64_t file_size, ElfError overflow, ElfError outside) {
    const auto end = checked_add(offset, size);
    if (!end)
        return overflow;
    if (*end > file_size)
        return outside;
    return std::nullopt;
}

bool among(const std::vector<std::uint16_t>& accepted, std::uint16_t v) {
    return std::find(accepted.begin(), accepted.end(), v) != accepted.end();
}

} // namespace

const char* elf_error_name(ElfError e) {
    return error_text(e).name;
}

std::string elf_failure_text(const ElfFailure& f) {
    if (f.code == ElfError::read_failed && f.io)
        return f.io->message;
    return fmt::format(fmt::runtime(error_text(f.code).message), fmt::arg("value", f.value),
                       fmt::arg("limit", f.limit), fmt::arg("name", f.name));
}

Error elf_error(const std::string& path, const ElfFailure& f) {
    return elf_error(path, f, elf_failure_text(f));
}

Error elf_error(const std::string& path, const ElfFailure& f, std::string_view text) {
    if (f.code == ElfError::read_failed && f.io)
        return *f.io;
    return Error{ExitCode::malformed, fmt::format("{}: {}", path, text)};
}

ElfResult<ElfFile> ElfFile::open(const InputFile& file, const ElfRules& rules) {
    ElfFile elf;
    elf.file_ = &file;
    elf.size_ = file.size();
    SVM_CHECK(elf.read_tables(rules));
    return elf;
}

ElfResult<ElfFile> ElfFile::parse(std::span<const std::byte> bytes, const ElfRules& rules) {
    ElfFile elf;
    elf.bytes_ = bytes;
    elf.size_ = bytes.size();
    SVM_CHECK(elf.read_tables(rules));
    return elf;
}

// Callers check the range first: reads are always inside [0, size_).
ElfResult<void> ElfFile::read(std::uint64_t offset, std::span<std::byte> out) const {
    if (out.empty()) // an empty table: nothing to read (and no buffer to copy to)
        return {};
    if (file_ != nullptr) {
        auto r = file_->read_at(offset, out);
        if (!r)
            return Unexpected<ElfFailure>(
                ElfFailure{ElfError::read_failed, offset, 0, {}, std::move(r).error()});
        return {};
    }
    std::memcpy(out.data(), bytes_.data() + offset, out.size());
    return {};
}

ElfResult<void> ElfFile::check_header(const ElfRules& rules) const {
    const Elf64_Ehdr& eh = header_;
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return refuse(ElfError::bad_magic);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64)
        return refuse(ElfError::wrong_class, eh.e_ident[EI_CLASS]);
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return refuse(ElfError::wrong_endianness, eh.e_ident[EI_DATA]);
    if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
        return refuse(ElfError::bad_version, eh.e_version);
    if (!among(rules.types, eh.e_type))
        return refuse(ElfError::wrong_type, eh.e_type);
    if (!rules.machines.empty() && !among(rules.machines, eh.e_machine))
        return refuse(ElfError::wrong_machine, eh.e_machine);
    if (eh.e_ehsize != sizeof(Elf64_Ehdr))
        return refuse(ElfError::bad_ehsize, eh.e_ehsize);
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        return refuse(ElfError::bad_phentsize, eh.e_phentsize);
    if (eh.e_shnum != 0 && eh.e_shentsize != sizeof(Elf64_Shdr))
        return refuse(ElfError::bad_shentsize, eh.e_shentsize);
    if (eh.e_phnum == 0 || eh.e_phnum > rules.max_program_headers)
        return refuse(ElfError::bad_program_header_count, eh.e_phnum, rules.max_program_headers);
    if (eh.e_shnum < rules.min_section_headers || eh.e_shnum > rules.max_section_headers)
        return refuse(ElfError::bad_section_header_count, eh.e_shnum, rules.max_section_headers,
                      std::to_string(rules.min_section_headers));
    // e_phnum and e_shnum are 16-bit: the table sizes cannot wrap, their ends can.
    if (auto e = range_error(eh.e_phoff, std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), size_,
                             ElfError::phdr_table_overflow, ElfError::phdr_table_outside_file))
        return refuse(*e);
    if (auto e = range_error(eh.e_shoff, std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr), size_,
                             ElfError::shdr_table_overflow, ElfError::shdr_table_outside_file))
        return refuse(*e);
    return {};
}

ElfResult<void> ElfFile::read_tables(const ElfRules& rules) {
    if (size_ < sizeof(Elf64_Ehdr))
        return refuse(ElfError::truncated_header, size_);
    SVM_CHECK(read(0, std::as_writable_bytes(std::span(&header_, 1))));
    SVM_CHECK(check_header(rules));
    phdrs_.resize(header_.e_phnum);
    SVM_CHECK(read(header_.e_phoff, std::as_writable_bytes(std::span(phdrs_))));
    shdrs_.resize(header_.e_shnum);
    SVM_CHECK(read(header_.e_shoff, std::as_writable_bytes(std::span(shdrs_))));
    if (rules.section_names)
        SVM_CHECK(read_names(rules));
    return {};
}

ElfResult<void> ElfFile::read_names(const ElfRules& rules) {
    const std::uint16_t index = header_.e_shstrndx;
    if (index == SHN_UNDEF || index >= shdrs_.size())
        return refuse(ElfError::bad_shstrndx, index);
    const Elf64_Shdr& table = shdrs_[index];
    const auto end = checked_add(table.sh_offset, table.sh_size);
    if (table.sh_type != SHT_STRTAB || !end || *end > size_ || table.sh_size == 0 ||
        table.sh_size > rules.max_name_table_size)
        return refuse(ElfError::bad_name_table);
    names_.resize(table.sh_size);
    SVM_CHECK(read(table.sh_offset, std::as_writable_bytes(std::span(names_))));
    if (names_.back() != '\0')
        return refuse(ElfError::name_table_unterminated);
    // Section 0 (SHN_UNDEF) has no name to check.
    for (std::size_t i = 1; i < shdrs_.size(); ++i)
        if (shdrs_[i].sh_name >= names_.size())
            return refuse(ElfError::section_name_outside_table, i);
    return {};
}

std::string_view ElfFile::section_name(std::size_t index) const {
    if (names_.empty() || index == 0 || index >= shdrs_.size())
        return {};
    return std::string_view(&names_[shdrs_[index].sh_name]);
}

const Elf64_Shdr* ElfFile::section(std::string_view name) const {
    for (std::size_t i = 1; i < shdrs_.size(); ++i)
        if (!names_.empty() && section_name(i) == name)
            return &shdrs_[i];
    return nullptr;
}

ElfResult<FileRange> ElfFile::segment_bytes(std::size_t index) const {
    const Elf64_Phdr& p = phdrs_.at(index);
    if (auto e = range_error(p.p_offset, p.p_filesz, size_, ElfError::segment_offset_overflow,
                             ElfError::segment_outside_file))
        return refuse(*e, index);
    return FileRange{p.p_offset, p.p_filesz};
}

ElfResult<FileRange> ElfFile::section_bytes(std::size_t index) const {
    const Elf64_Shdr& s = shdrs_.at(index);
    if (auto e = range_error(s.sh_offset, s.sh_size, size_, ElfError::section_offset_overflow,
                             ElfError::section_outside_file)) {
        const std::string_view name = section_name(index);
        return refuse(*e, index, 0, name.empty() ? fmt::format("#{}", index) : std::string(name));
    }
    return FileRange{s.sh_offset, s.sh_size};
}

// The string table a symbol table links to, NUL-terminated, or bad_symbol_table
// naming `symtab`.
ElfResult<std::vector<char>> ElfFile::read_string_table(std::size_t symtab) const {
    const std::uint32_t link = shdrs_[symtab].sh_link;
    if (link == SHN_UNDEF || link >= shdrs_.size() || shdrs_[link].sh_type != SHT_STRTAB)
        return refuse(ElfError::bad_symbol_table, symtab);
    const Elf64_Shdr& s = shdrs_[link];
    if (range_error(s.sh_offset, s.sh_size, size_, ElfError::section_offset_overflow,
                    ElfError::section_outside_file) ||
        s.sh_size == 0 || s.sh_size > (64u << 20))
        return refuse(ElfError::bad_symbol_table, symtab);
    std::vector<char> strings(s.sh_size);
    SVM_CHECK(read(s.sh_offset, std::as_writable_bytes(std::span(strings))));
    if (strings.back() != '\0')
        return refuse(ElfError::bad_symbol_table, symtab);
    return strings;
}

ElfResult<std::optional<std::uint64_t>> ElfFile::symbol_value(std::string_view name) const {
    for (std::size_t t = 1; t < shdrs_.size(); ++t) {
        const Elf64_Shdr& s = shdrs_[t];
        if (s.sh_type != SHT_SYMTAB)
            continue;
        if (s.sh_entsize != sizeof(Elf64_Sym) || s.sh_size % sizeof(Elf64_Sym) != 0 ||
            s.sh_size > (64u << 20) ||
            range_error(s.sh_offset, s.sh_size, size_, ElfError::section_offset_overflow,
                        ElfError::section_outside_file))
            return refuse(ElfError::bad_symbol_table, t);
        SVM_TRY(strings, read_string_table(t));
        std::vector<Elf64_Sym> symbols(s.sh_size / sizeof(Elf64_Sym));
        SVM_CHECK(read(s.sh_offset, std::as_writable_bytes(std::span(symbols))));
        for (std::size_t i = 0; i < symbols.size(); ++i) {
            if (symbols[i].st_name >= strings.size())
                return refuse(ElfError::symbol_name_outside_table, i);
            if (std::string_view(&strings[symbols[i].st_name]) == name)
                return std::optional<std::uint64_t>(symbols[i].st_value);
        }
    }
    return std::optional<std::uint64_t>();
}

} // namespace svmkit::format
