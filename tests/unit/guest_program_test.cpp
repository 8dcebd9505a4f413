// Normal-guest boot (docs/loader-boot.md): the firmware placing a guest
// program (platform/guest_program.*), the /chosen it gets, and the machine
// running the real boot loader (samples/boot_loader) on a secure image passed
// kexec-style, including the purgatory catching a hypervisor's write.
#include "base/output_file.hpp"
#include "platform/guest_memory.hpp"
#include "platform/guest_program.hpp"

#include "guest/layout.h"
#include "guest/uv_abi.h"
#include "platform/machine.hpp"
#include "platform/platform_fdt.hpp"
#include "test_support.hpp"
#include "wrapper/commands.hpp"

#include <doctest/doctest.h>
#include <elf.h>
#include <libfdt.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace svmkit;
using namespace svmkit::platform;

namespace {

constexpr std::uint64_t kMemory = 256ull << 20;

std::filesystem::path build_dir() {
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path();
}
std::string boot_loader() {
    return (build_dir() / "wrapper/svmkit-boot-loader.elf").string();
}
std::string sample_kernel() {
    return (build_dir() / "samples/kernel/sample-kernel.elf").string();
}

// A minimal guest program: one PT_LOAD of `text` bytes at `paddr`.
struct Program {
    Elf64_Ehdr eh{};
    Elf64_Phdr ph{};
    std::vector<std::byte> text = std::vector<std::byte>(64, std::byte{0xcc});

    explicit Program(std::uint64_t paddr = 0x8000000) {
        std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        eh.e_type = ET_EXEC;
        eh.e_machine = EM_X86_64;
        eh.e_version = EV_CURRENT;
        eh.e_entry = SVMKIT_SIM_GUEST_VA_BASE + paddr;
        eh.e_phoff = sizeof eh;
        eh.e_ehsize = sizeof eh;
        eh.e_phentsize = sizeof ph;
        eh.e_phnum = 1;
        ph.p_type = PT_LOAD;
        ph.p_flags = PF_R | PF_X;
        ph.p_offset = sizeof eh + sizeof ph;
        ph.p_vaddr = SVMKIT_SIM_GUEST_VA_BASE + paddr;
        ph.p_paddr = paddr;
        ph.p_filesz = text.size();
        ph.p_memsz = 0x1000;
    }
    std::string write(const test::TempDir& dir, const std::string& name) const {
        std::vector<std::byte> out(sizeof eh + sizeof ph);
        std::memcpy(out.data(), &eh, sizeof eh);
        std::memcpy(out.data() + sizeof eh, &ph, sizeof ph);
        out.insert(out.end(), text.begin(), text.end());
        test::write_bytes(dir.file(name), out);
        return dir.file(name);
    }
};

const AvoidRange kFirmware[] = {{kFirmwareFdtAddress, 0x10000, "the device tree"},
                                {kGuestStackBase, 0x100000, "the stack"}};

std::string place_error(GuestMemory& mem, const std::string& path) {
    auto r = place_guest_program(mem, path, kFirmware);
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
}

} // namespace

TEST_CASE("guest program: placed at its physical addresses, the rest of memsz zeroed") {
    test::TempDir dir("gprog");
    auto mem = GuestMemory::create(kMemory);
    REQUIRE(mem.has_value());
    std::vector<std::byte> junk(0x1000, std::byte{0x5a});
    REQUIRE(mem->write(0x8000000, junk).has_value());
    Program p;
    auto placed = place_guest_program(*mem, p.write(dir, "p.elf"), kFirmware);
    REQUIRE_MESSAGE(placed.has_value(), placed.error().message);
    CHECK(placed->start == 0x8000000);
    CHECK(placed->end == 0x8001000);
    CHECK(placed->entry == 0x8000000);
    std::vector<std::byte> back(0x1000);
    REQUIRE(mem->read(0x8000000, back).has_value());
    CHECK(std::equal(p.text.begin(), p.text.end(), back.begin()));
    CHECK(
        std::all_of(back.begin() + 64, back.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_CASE("guest program: every bad header is refused before anything is copied") {
    test::TempDir dir("gprog");
    auto mem = GuestMemory::create(kMemory);
    REQUIRE(mem.has_value());
    {
        test::write_bytes(dir.file("short"), std::vector<std::byte>(10));
        CHECK(place_error(*mem, dir.file("short")).find("shorter than an ELF header") !=
              std::string::npos);
    }
    Program wrong_machine;
    wrong_machine.eh.e_machine = EM_PPC64;
    CHECK(place_error(*mem, wrong_machine.write(dir, "m")).find("not an x86-64") !=
          std::string::npos);
    Program no_phdrs;
    no_phdrs.eh.e_phoff = 1 << 20;
    CHECK(place_error(*mem, no_phdrs.write(dir, "ph")).find("program headers outside the file") !=
          std::string::npos);
    Program outside(kMemory - 0x800);
    CHECK(place_error(*mem, outside.write(dir, "o")).find("outside the file or guest RAM") !=
          std::string::npos);
    Program filesz;
    filesz.ph.p_memsz = 8;
    CHECK(place_error(*mem, filesz.write(dir, "f")).find("outside the file or guest RAM") !=
          std::string::npos);
    Program on_image(SVMKIT_IMAGE_BASE - 0x800);
    CHECK(place_error(*mem, on_image.write(dir, "i")).find("covers the secure-image base") !=
          std::string::npos);
    Program on_stack(kGuestStackBase + 0x1000);
    CHECK(place_error(*mem, on_stack.write(dir, "s"))
              .find(fmt::format("overlaps the stack [{:#x}, {:#x})", kGuestStackBase,
                                kGuestStackBase + 0x100000)) != std::string::npos);
    Program entry_out;
    entry_out.eh.e_entry += 0x2000;
    CHECK(place_error(*mem, entry_out.write(dir, "e")).find("lies in no executable segment") !=
          std::string::npos);
    Program not_x;
    not_x.ph.p_flags = PF_R;
    CHECK(place_error(*mem, not_x.write(dir, "x")).find("lies in no executable segment") !=
          std::string::npos);
    Program physical_entry;
    physical_entry.eh.e_entry = 0x8000000;
    CHECK(place_error(*mem, physical_entry.write(dir, "pe")).find("not a guest virtual address") !=
          std::string::npos);
    // Nothing of them reached guest memory.
    std::vector<std::byte> back(64);
    REQUIRE(mem->read(0x8000000, back).has_value());
    CHECK(std::all_of(back.begin(), back.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_CASE("platform fdt: /chosen carries the loader's bootargs and the kexec image range") {
    PlatformFdtSpec spec;
    spec.memory_size = kMemory;
    spec.bootargs = "svmkit.boot_entry=rescue";
    spec.initrd = Reservation{0xf000000, 0x12345};
    auto fdt = build_platform_fdt(spec);
    REQUIRE(fdt.has_value());
    const void* f = fdt->data();
    const int chosen = fdt_path_offset(f, "/chosen");
    REQUIRE(chosen >= 0);
    int len = 0;
    const char* args = static_cast<const char*>(fdt_getprop(f, chosen, "bootargs", &len));
    REQUIRE(args != nullptr);
    CHECK(std::string(args) == "svmkit.boot_entry=rescue");
    const auto* start =
        static_cast<const std::uint8_t*>(fdt_getprop(f, chosen, "linux,initrd-start", &len));
    REQUIRE((start != nullptr && len == 8));
    std::uint64_t v = 0;
    std::memcpy(&v, start, 8);
    CHECK(__builtin_bswap64(v) == 0xf000000);
    const auto* end =
        static_cast<const std::uint8_t*>(fdt_getprop(f, chosen, "linux,initrd-end", &len));
    REQUIRE((end != nullptr && len == 8));
    std::memcpy(&v, end, 8);
    CHECK(__builtin_bswap64(v) == 0xf012345);
    // Without them, /chosen stays empty (a secure image's firmware boot).
    auto plain = build_platform_fdt(PlatformFdtSpec{kMemory, {}, 0, {}, std::nullopt});
    REQUIRE(plain.has_value());
    const int c2 = fdt_path_offset(plain->data(), "/chosen");
    CHECK(fdt_first_property_offset(plain->data(), c2) < 0);
}

namespace {

struct KexecLab {
    test::TempDir dir{"kexec"};
    std::string image;
    KexecLab() {
        REQUIRE_MESSAGE(std::filesystem::exists(boot_loader()), boot_loader());
        REQUIRE(cli::run_keygen({"ed25519", dir.file("k.key"), dir.file("k.pub")}).has_value());
        cli::BuildOptions b;
        b.kernel = sample_kernel();
        b.cmdline = "console=hvc0 svm=on svmkit.swiotlb=8M";
        b.key.keys = {dir.file("k.key")};
        b.output = dir.file("secure.img");
        REQUIRE(cli::run_build(b).has_value());
        image = b.output;
    }
    std::unique_ptr<Machine> boot(std::vector<std::string> hooks = {}, int log_fd = -1) {
        MachineConfig config;
        config.memory_size = kMemory;
        config.timeout = std::chrono::seconds(60);
        config.hypervisor_path = SVMKIT_HYPERVISOR_PATH;
        config.hv_hooks = std::move(hooks);
        config.hv_hook_log_fd = log_fd;
        auto key = signer::PublicKey::load(dir.file("k.pub"));
        REQUIRE(key.has_value());
        config.policy.verify.trusted_keys.push_back(std::move(*key));
        auto m = Machine::create(std::move(config));
        REQUIRE_MESSAGE(m.has_value(), m.error().message);
        NormalBootSpec spec;
        spec.program = boot_loader();
        spec.cmdline = "quiet";
        spec.kexec_image = image;
        auto loaded = (*m)->load_normal(spec);
        REQUIRE_MESSAGE(loaded.has_value(), loaded.error().message);
        auto ran = (*m)->run();
        REQUIRE_MESSAGE(ran.has_value(), ran.error().message);
        return std::move(*m);
    }
};

} // namespace

TEST_CASE("machine: the boot loader loads a secure image kexec-style and the kernel runs secure") {
    KexecLab lab;
    auto m = lab.boot();
    const BootReport& r = m->report();
    INFO(r.console);
    CHECK(r.outcome == BootOutcome::exited);
    CHECK(r.exit_status == 0u);
    REQUIRE(r.loader.has_value());
    const LoaderReport& l = *r.loader;
    CHECK(l.program.start == 0x8000000);
    CHECK(l.cmdline == "quiet");
    REQUIRE(l.kexec_buffer.has_value());
    CHECK(l.kexec_buffer->second - l.kexec_buffer->first == std::filesystem::file_size(lab.image));
    CHECK(l.source == SVMKIT_LOADER_SOURCE_KEXEC);
    CHECK(l.image_gpa == l.kexec_buffer->first);
    CHECK(l.placed);
    CHECK(l.kbase == SVMKIT_IMAGE_BASE);
    CHECK(l.entry == SVMKIT_IMAGE_BASE);
    CHECK(l.purgatory_ok == true);
    CHECK_FALSE(l.entries.has_value());
    // Every component the ultravisor hashed was a placed segment with the
    // digest the loader recorded.
    REQUIRE(r.esm.has_value());
    CHECK(r.esm->ok());
    for (const DigestCheck& d : r.esm->digests) {
        const bool found = std::any_of(l.segments.begin(), l.segments.end(), [&](const auto& s) {
            return s.address == d.address && s.size == d.size &&
                   std::equal(s.sha256.begin(), s.sha256.end(), d.digest.begin(),
                              [](std::uint8_t a, std::byte b) {
                                  return a == std::to_integer<std::uint8_t>(b);
                              });
        });
        CHECK_MESSAGE(found, "component at ", d.address);
    }
    std::vector<std::string> stages;
    for (const BootStage& s : r.stages)
        stages.push_back(s.name);
    CHECK(stages ==
          std::vector<std::string>{"load", "loader", "stub", "esm", "stub-secure", "kernel"});
}

TEST_CASE("machine: the purgatory stops a boot whose placed segment the hypervisor changed") {
    KexecLab lab;
    test::TempDir logs("kexec-log");
    auto log = OutputFile::create(logs.file("hooks.jsonl"));
    REQUIRE(log.has_value());
    auto m = lab.boot({"segments-placed:write=0x4010008:00ff"}, log->fd());
    REQUIRE(log->commit().has_value());
    const BootReport& r = m->report();
    INFO(r.console);
    CHECK(r.outcome == BootOutcome::exited);
    CHECK(r.exit_status == 32u);
    REQUIRE(r.loader.has_value());
    CHECK(r.loader->purgatory_ok == false);
    CHECK(r.loader->bad_segment == 1);
    CHECK_FALSE(r.esm.has_value());
    CHECK(r.console.find("purgatory: segment 1 at 0x4010000") != std::string::npos);
    std::ifstream in(logs.file("hooks.jsonl"));
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str().find(R"("event":"segments-placed","action":"write")") != std::string::npos);
}
