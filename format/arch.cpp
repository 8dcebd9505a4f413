#include "format/arch.hpp"

#include "guest/layout.h"

#include <elf.h>

namespace svmkit::format {

std::string_view arch_name(Arch arch) {
    switch (arch) {
    case Arch::x86_64:
        return "x86_64";
    case Arch::ppc64le:
        return "ppc64le";
    }
    return "?";
}

Arch host_arch() {
#if defined(__x86_64__)
    return Arch::x86_64;
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
    return Arch::ppc64le;
#else
#error "svmkit's simulated platform supports x86-64 and ppc64le hosts"
#endif
}

Result<Arch> parse_arch(std::string_view name) {
    if (name == "host")
        return host_arch();
    if (name == "x86_64")
        return Arch::x86_64;
    if (name == "ppc64le")
        return Arch::ppc64le;
    return fail(ExitCode::usage, "unknown architecture '{}' (expected host, x86_64 or ppc64le)",
                name);
}

std::uint16_t arch_elf_machine(Arch arch) {
    return arch == Arch::x86_64 ? EM_X86_64 : EM_PPC64;
}

std::uint32_t arch_elf_flags(Arch arch) {
    return arch == Arch::ppc64le ? 2u : 0u;
}

std::uint64_t arch_link_va_base(Arch arch) {
    return arch == Arch::x86_64 ? static_cast<std::uint64_t>(SVMKIT_SIM_GUEST_VA_BASE) : 0;
}

} // namespace svmkit::format
