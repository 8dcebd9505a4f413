#include "wrapper/arch_option.hpp"

#include "base/file.hpp"

#include <array>

namespace svmkit::cli {

namespace {

// The architecture an ELF file names in e_machine (bytes 18-19, little- or
// big-endian by EI_DATA); nullopt when it is not an ELF file svmkit knows.
Result<std::optional<format::Arch>> elf_arch(const std::string& path) {
    SVM_TRY(file, InputFile::open(path));
    std::array<std::byte, 20> head{};
    if (file.size() < head.size())
        return std::optional<format::Arch>{};
    SVM_CHECK(file.read_at(0, head));
    const auto b = [&](std::size_t i) {
        return std::to_integer<unsigned>(head[i]);
    };
    if (b(0) != 0x7f || b(1) != 'E' || b(2) != 'L' || b(3) != 'F')
        return std::optional<format::Arch>{};
    const unsigned machine = b(5) == 2 ? (b(18) << 8 | b(19)) : (b(18) | b(19) << 8);
    for (format::Arch a : {format::Arch::x86_64, format::Arch::ppc64le})
        if (machine == format::arch_elf_machine(a))
            return std::optional<format::Arch>{a};
    return fail(ExitCode::malformed, "{}: an ELF file for machine {}, neither x86_64 nor ppc64le",
                path, machine);
}

} // namespace

Result<format::Arch> resolve_arch(const std::string& option_value, const std::string& kernel) {
    std::optional<format::Arch> given;
    if (!option_value.empty()) {
        auto parsed = format::parse_arch(option_value);
        if (!parsed)
            return fail(ExitCode::usage, "--arch: {}", parsed.error().message);
        given = *parsed;
    }
    std::optional<format::Arch> from_kernel;
    if (!kernel.empty() && kernel != "-") {
        SVM_TRY(found, elf_arch(kernel));
        from_kernel = found;
    }
    if (given && from_kernel && *given != *from_kernel)
        return fail(ExitCode::usage, "--arch {}: the kernel {} is a {} ELF file", option_value,
                    kernel, format::arch_name(*from_kernel));
    if (from_kernel)
        return *from_kernel;
    return given.value_or(format::host_arch());
}

} // namespace svmkit::cli
