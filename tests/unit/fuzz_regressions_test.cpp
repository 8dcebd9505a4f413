// Inputs the fuzzers once crashed on (tests/fuzz/regressions/): each must now
// be refused cleanly. Runs in the normal suite, and under ASan in CI.
#include "format/elf_reader.hpp"
#include "format/manifest_fdt.hpp"
#include "platform/guest_memory.hpp"
#include "platform/ultravisor.hpp"
#include "test_support.hpp"

#include <cstring>
#include <doctest/doctest.h>
#include <filesystem>

using namespace svmkit;

namespace {

std::vector<std::filesystem::path> regressions(const std::string& prefix) {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(SVMKIT_FUZZ_DIR "/regressions"))
        if (e.path().filename().string().starts_with(prefix))
            out.push_back(e.path());
    REQUIRE_FALSE(out.empty());
    return out;
}

} // namespace

TEST_CASE("fuzz regressions: manifest decoder refuses trees that break libfdt") {
    for (const auto& path : regressions("manifest-")) {
        CAPTURE(path.string());
        auto blob = test::read_bytes(path.string());
        auto m = format::decode_manifest_fdt(blob, "regression");
        REQUIRE_FALSE(m.has_value());
        CHECK(m.error().code == ExitCode::malformed);
    }
}

TEST_CASE("fuzz regressions: UV_ESM refuses old-version device trees") {
    for (const auto& path : regressions("esm-")) {
        CAPTURE(path.string());
        auto input = test::read_bytes(path.string());
        REQUIRE(input.size() >= 4);
        std::uint32_t fdt_size = 0;
        std::memcpy(&fdt_size, input.data(), 4);
        auto rest = std::span(input).subspan(4);
        fdt_size = static_cast<std::uint32_t>(std::min<std::size_t>(fdt_size, rest.size()));
        auto memory = platform::GuestMemory::create(2u << 20);
        REQUIRE(memory.has_value());
        REQUIRE(memory->write(0x10000, rest.first(fdt_size)).has_value());
        REQUIRE(memory->write(0x100000, rest.subspan(fdt_size)).has_value());
        auto r = platform::enter_secure_mode(*memory, 0, 0x10000, platform::EsmPolicy{});
        REQUIRE(r.has_value());
        CHECK(r->failure == platform::EsmFailure::bad_fdt);
    }
}

TEST_CASE("fuzz regressions: the ELF reader reads a file without section headers") {
    // An x86-64 executable with e_shnum 0: the empty section table was copied
    // to a null buffer (UBSan: memcpy's null argument). Accepted where the
    // rules allow no sections, refused where they ask for them.
    for (const auto& path : regressions("elf_reader-")) {
        CAPTURE(path.string());
        const auto input = test::read_bytes(path.string());
        format::ElfRules rules;
        rules.types = {ET_EXEC};
        auto elf = format::ElfFile::parse(input, rules);
        REQUIRE(elf.has_value());
        CHECK(elf->section_headers().empty());
        rules.min_section_headers = 1;
        auto strict = format::ElfFile::parse(input, rules);
        REQUIRE_FALSE(strict.has_value());
        CHECK(strict.error().code == format::ElfError::bad_section_header_count);
    }
}
