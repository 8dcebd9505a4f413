// RAII ownership of libelf handles.
#pragma once

#include <gelf.h>
#include <libelf.h>
#include <memory>
#include <string>

namespace svmkit::format {

struct ElfDeleter {
    void operator()(Elf* e) const { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfDeleter>;

// Must be called before any other libelf function; idempotent.
bool libelf_init();

inline std::string libelf_error() {
    return elf_errmsg(-1);
}

} // namespace svmkit::format
