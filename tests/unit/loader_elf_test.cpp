// The loader's strict ELF validation and segment plan (loader/elf_plan.h):
// real secure images built by svmkit for both platforms are accepted with the
// plan their own headers describe (cross-checked with format's own image
// reader, format/image_reader.cpp, a separate parser); the crafted corpus in tests/data/loader/ (one defect per file) is
// rejected, each file with ITS reason; limits hold at their exact edges; no
// prefix of a valid image is accepted or read beyond.
#include "loader/elf_plan.h"

#include "format/image_reader.hpp"
#include "guest/layout.h"
#include "test_support.hpp"
#include "wrapper/commands.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace svmkit;
using loader::ElfError;
using loader::LoadConstraints;
using loader::LoadPlan;
using loader::plan_elf_load;

namespace {

const std::string kDataDir = std::string(SVMKIT_TEST_DATA_DIR) + "/loader";
constexpr std::uint64_t kVaBase = SVMKIT_SIM_GUEST_VA_BASE;
constexpr std::uint64_t kTextPaddr = 0x4000000;
constexpr std::uint64_t kDataPaddr = 0x4010000;

// The simulated machine's layout the corpus is written for
// (tests/data/loader/make_malformed.py): 256 MiB of RAM, the firmware's FDT
// and stack below the image base reserved.
LoadConstraints sim_constraints() {
    LoadConstraints c{};
    c.machine = loader::kMachineX86_64;
    c.ram_start = 0;
    c.ram_end = 256ull << 20;
    c.reserved[0] = {0x3e00000, 0x3e10000};
    c.reserved[1] = {0x3f00000, 0x4000000};
    c.reserved_count = 2;
    c.max_segment_size = 64ull << 20;
    return c;
}

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs the planner on a heap copy of exactly `bytes`' size, so ASan catches a
// read one past the end.
ElfError plan(const std::vector<std::uint8_t>& bytes, const LoadConstraints& c, LoadPlan* out) {
    auto copy = std::make_unique<std::uint8_t[]>(bytes.size() + (bytes.empty() ? 1 : 0));
    if (!bytes.empty())
        std::memcpy(copy.get(), bytes.data(), bytes.size());
    return plan_elf_load(bytes.empty() ? nullptr : copy.get(), bytes.size(), c, out);
}

ElfError plan(const std::vector<std::uint8_t>& bytes,
              const LoadConstraints& c = sim_constraints()) {
    LoadPlan p{};
    return plan(bytes, c, &p);
}

void put64(std::vector<std::uint8_t>& b, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Program header field offsets (ELF64).
constexpr std::size_t phdr_at(int i) {
    return 64 + static_cast<std::size_t>(i) * 56;
}
constexpr std::size_t kPType = 0, kPFlags = 4, kPOffset = 8, kPVaddr = 16, kPPaddr = 24,
                      kPFilesz = 32, kPMemsz = 40;

std::vector<std::uint8_t> minimal() {
    return read_file(kDataDir + "/good/minimal.elf");
}

// Moves segment 1 (data) of the minimal image to physical `paddr` with `memsz`.
std::vector<std::uint8_t> data_at(std::uint64_t paddr, std::uint64_t memsz) {
    auto b = minimal();
    put64(b, phdr_at(1) + kPPaddr, paddr);
    put64(b, phdr_at(1) + kPVaddr, kVaBase + paddr);
    put64(b, phdr_at(1) + kPMemsz, memsz);
    return b;
}

std::map<std::string, std::string> expected_reasons() {
    std::map<std::string, std::string> out;
    std::ifstream in(kDataDir + "/malformed/EXPECTED");
    REQUIRE(in.good());
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream words(line);
        std::string file, reason;
        words >> file >> reason;
        REQUIRE_MESSAGE(!reason.empty(), line);
        out[file] = reason;
    }
    return out;
}

} // namespace

TEST_CASE("loader elf: the crafted valid image is planned exactly") {
    LoadPlan p{};
    REQUIRE(plan(minimal(), sim_constraints(), &p) == ElfError::none);
    REQUIRE(p.count == 2);
    CHECK(p.segments[0].file_offset == 0x1000);
    CHECK(p.segments[0].file_size == 0x200);
    CHECK(p.segments[0].address == kTextPaddr);
    CHECK(p.segments[0].mem_size == 0x200);
    CHECK(p.segments[0].executable);
    CHECK_FALSE(p.segments[0].writable);
    CHECK(p.segments[1].file_offset == 0x2000);
    CHECK(p.segments[1].file_size == 0x100);
    CHECK(p.segments[1].address == kDataPaddr);
    CHECK(p.segments[1].mem_size == 0x1000);
    CHECK_FALSE(p.segments[1].executable);
    CHECK(p.segments[1].writable);
    // e_entry is virtual (VA base + 0x4000040); the plan's entry is physical.
    CHECK(p.entry == kTextPaddr + 0x40);
}

TEST_CASE("loader elf: every crafted malformed image is rejected with its own reason") {
    const auto expected = expected_reasons();
    std::set<std::string> covered;
    for (const auto& entry : expected) {
        const std::string& file = entry.first;
        const std::string& reason = entry.second;
        CAPTURE(file);
        const auto bytes = read_file(kDataDir + "/malformed/" + file);
        LoadPlan p{};
        p.count = 0xdead;
        const ElfError e = plan(bytes, sim_constraints(), &p);
        CHECK(std::string(loader::elf_error_name(e)) == reason);
        CHECK(p.count == 0xdead); // a rejected file leaves the plan alone
        covered.insert(reason);
    }
    // Every file in the folder is listed, and every reason has a file.
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(kDataDir + "/malformed"))
        if (entry.path().extension() == ".elf") {
            ++files;
            CHECK_MESSAGE(expected.count(entry.path().filename().string()) == 1,
                          entry.path().filename().string());
        }
    CHECK(files == expected.size());
    for (std::uint32_t i = 1; i < loader::kElfErrorCount; ++i) {
        const char* name = loader::elf_error_name(static_cast<ElfError>(i));
        CHECK_MESSAGE(covered.count(name) == 1, "no corpus file for ", name);
    }
}

TEST_CASE("loader elf: the checked-in corpus is what make_malformed.py writes") {
    if (!test::have_tool("python3")) {
        MESSAGE("python3 missing: corpus reproducibility not checked");
        return;
    }
    test::TempDir dir("loader");
    int status = 0;
    const std::string out =
        test::run_capture("python3 " + kDataDir + "/make_malformed.py " + dir.file("c"), status);
    REQUIRE_MESSAGE(status == 0, out);
    CHECK(read_file(dir.file("c/good/minimal.elf")) == minimal());
    CHECK(read_file(dir.file("c/malformed/EXPECTED")) ==
          read_file(kDataDir + "/malformed/EXPECTED"));
    for (const auto& entry : expected_reasons()) {
        const std::string& file = entry.first;
        CAPTURE(file);
        CHECK(read_file(dir.file("c/malformed/" + file)) ==
              read_file(kDataDir + "/malformed/" + file));
    }
}

TEST_CASE("loader elf: each error has a distinct message and name") {
    std::set<std::string> messages, names;
    for (std::uint32_t i = 0; i < loader::kElfErrorCount; ++i) {
        const auto e = static_cast<ElfError>(i);
        CHECK(std::strlen(loader::elf_error_message(e)) > 0);
        messages.insert(loader::elf_error_message(e));
        names.insert(loader::elf_error_name(e));
    }
    CHECK(messages.size() == loader::kElfErrorCount);
    CHECK(names.size() == loader::kElfErrorCount);
    const auto bogus = static_cast<ElfError>(loader::kElfErrorCount);
    CHECK(std::string(loader::elf_error_message(bogus)) == "unknown ELF error");
    CHECK(std::string(loader::elf_error_name(bogus)) == "unknown");
}

TEST_CASE("loader elf: no prefix of a valid image is accepted") {
    // The section header table is the file's last bytes: every shorter prefix
    // is missing something the validation needs, and ASan checks that no
    // prefix is read past its end.
    const auto full = minimal();
    for (std::size_t n = 0; n < full.size(); ++n) {
        CAPTURE(n);
        std::vector<std::uint8_t> prefix(full.begin(), full.begin() + static_cast<long>(n));
        CHECK(plan(prefix) != ElfError::none);
    }
    CHECK(plan(full) == ElfError::none);
}

TEST_CASE("loader elf: limits hold at their exact edges") {
    const LoadConstraints c = sim_constraints();
    SUBCASE("RAM end") {
        CHECK(plan(data_at(c.ram_end - 0x1000, 0x1000)) == ElfError::none);
        CHECK(plan(data_at(c.ram_end - 0xfff, 0x1000)) == ElfError::segment_outside_ram);
    }
    SUBCASE("RAM start") {
        LoadConstraints high = c;
        high.ram_start = kDataPaddr;
        CHECK(plan(minimal(), high) == ElfError::segment_outside_ram); // text below
        high.ram_start = kTextPaddr;
        CHECK(plan(minimal(), high) == ElfError::none);
    }
    SUBCASE("reserved ranges: touching is fine, one byte in is not") {
        CHECK(plan(data_at(0x3e10000, 0xf0000)) == ElfError::none); // between the two
        CHECK(plan(data_at(0x3e10000, 0xf0001)) == ElfError::segment_in_reserved);
        CHECK(plan(data_at(0x3dff000, 0x1000)) == ElfError::none); // just below the FDT
        CHECK(plan(data_at(0x3dff000, 0x1001)) == ElfError::segment_in_reserved);
        CHECK(plan(data_at(0x3efffff, 0x1000)) == ElfError::segment_in_reserved);
    }
    SUBCASE("segment size limit") {
        LoadConstraints small = c;
        small.max_segment_size = 0x1000;
        CHECK(plan(minimal(), small) == ElfError::none); // data memsz is 0x1000
        small.max_segment_size = 0xfff;
        CHECK(plan(minimal(), small) == ElfError::segment_too_large);
    }
    SUBCASE("adjacent segments do not overlap, one byte more does") {
        auto b = minimal();
        put64(b, phdr_at(1) + kPPaddr, kTextPaddr + 0x200);
        put64(b, phdr_at(1) + kPVaddr, kVaBase + kTextPaddr + 0x200);
        CHECK(plan(b) == ElfError::none);
        put64(b, phdr_at(1) + kPPaddr, kTextPaddr + 0x1ff);
        CHECK(plan(b) == ElfError::segments_overlap);
    }
    SUBCASE("adjacent file ranges do not overlap") {
        auto b = minimal();
        put64(b, phdr_at(1) + kPOffset, 0x1200);
        CHECK(plan(b) == ElfError::none);
        put64(b, phdr_at(1) + kPOffset, 0x11ff);
        CHECK(plan(b) == ElfError::segment_files_overlap);
    }
    SUBCASE("entry: first and last byte of the text, not its end") {
        auto b = minimal();
        LoadPlan p{};
        put64(b, 24, kVaBase + kTextPaddr);
        REQUIRE(plan(b, c, &p) == ElfError::none);
        CHECK(p.entry == kTextPaddr);
        put64(b, 24, kVaBase + kTextPaddr + 0x1ff);
        REQUIRE(plan(b, c, &p) == ElfError::none);
        CHECK(p.entry == kTextPaddr + 0x1ff);
        put64(b, 24, kVaBase + kTextPaddr + 0x200);
        CHECK(plan(b) == ElfError::entry_not_executable);
        put64(b, 24, kTextPaddr); // the physical address is not the virtual one
        CHECK(plan(b) == ElfError::entry_not_executable);
    }
    SUBCASE("entry inside the zero fill of an executable segment") {
        auto b = minimal();
        put32(b, phdr_at(1) + kPFlags, 5); // data R+X, entry in its bss
        put64(b, 24, kVaBase + kDataPaddr + 0x100);
        CHECK(plan(b) == ElfError::entry_not_executable);
        put64(b, 24, kVaBase + kDataPaddr + 0xff);
        CHECK(plan(b) == ElfError::none);
    }
    SUBCASE("filesz == memsz is fine, zero filesz too") {
        auto b = minimal();
        put64(b, phdr_at(1) + kPFilesz, 0x1000);
        put64(b, phdr_at(1) + kPMemsz, 0x1000);
        CHECK(plan(b) == ElfError::segment_beyond_file); // 0x2000 + 0x1000 > file
        put64(b, phdr_at(1) + kPFilesz, 0);
        CHECK(plan(b) == ElfError::none);
    }
    SUBCASE("non-load headers are skipped, not planned") {
        auto b = minimal();
        put32(b, phdr_at(1) + kPType, 4); // PT_NOTE
        LoadPlan p{};
        REQUIRE(plan(b, c, &p) == ElfError::none);
        CHECK(p.count == 1);
        put32(b, phdr_at(1) + kPType, 2); // PT_DYNAMIC
        CHECK(plan(b) == ElfError::dynamic_image);
    }
    SUBCASE("the other platform's machine") {
        LoadConstraints ppc = c;
        ppc.machine = loader::kMachinePpc64;
        CHECK(plan(minimal(), ppc) == ElfError::wrong_machine);
    }
    SUBCASE("a reserved count beyond the array is clamped") {
        LoadConstraints odd = c;
        odd.reserved_count = 1000;
        CHECK(plan(minimal(), odd) == ElfError::none);
    }
}

TEST_CASE("loader elf: 16 loadable segments are accepted, the 17th is refused") {
    // Built from the minimal image: 16 text-like segments of 0x10 bytes each.
    auto b = minimal();
    const int n = static_cast<int>(loader::kMaxSegments);
    b[56] = static_cast<std::uint8_t>(n); // e_phnum
    for (int i = 0; i < n; ++i) {
        const std::size_t at = phdr_at(i);
        put32(b, at + kPType, 1);
        put32(b, at + kPFlags, i == 0 ? 5 : 4);
        put64(b, at + kPOffset, 0x1000 + static_cast<std::uint64_t>(i) * 0x10);
        put64(b, at + kPVaddr, kVaBase + kTextPaddr + static_cast<std::uint64_t>(i) * 0x10000);
        put64(b, at + kPPaddr, kTextPaddr + static_cast<std::uint64_t>(i) * 0x10000);
        put64(b, at + kPFilesz, 0x10);
        put64(b, at + kPMemsz, 0x10);
        put64(b, at + 48, 0x10000);
    }
    put64(b, 24, kVaBase + kTextPaddr);
    LoadPlan p{};
    REQUIRE(plan(b, sim_constraints(), &p) == ElfError::none);
    CHECK(p.count == loader::kMaxSegments);
    CHECK(p.segments[15].address == kTextPaddr + 15ull * 0x10000);
}

namespace {

// Builds a signed secure image with the CLI's build flow.
std::string build_image(const test::TempDir& dir, const std::string& arch,
                        const std::string& kernel, std::optional<std::string> load_addr) {
    auto key = cli::run_keygen({"ed25519", dir.file("k.key"), dir.file("k.pub")});
    REQUIRE(key.has_value());
    test::write_bytes(dir.file("initrd"), test::random_bytes(70000, 9));
    cli::BuildOptions b;
    b.arch = arch;
    b.kernel = kernel;
    b.kernel_load_addr = std::move(load_addr);
    b.initrd = dir.file("initrd");
    b.cmdline = "console=hvc0 svm=on";
    b.key.keys = {dir.file("k.key")};
    b.output = dir.file(arch + ".img");
    auto r = cli::run_build(b);
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    return b.output;
}

// The plan must be exactly the image's PT_LOAD segments as format's reader
// (a parser separate from the loader's) sees them, in the same order, with every
// loaded section (the manifest's too) inside one; entry at the image base.
void check_real_image(const std::string& path, const LoadConstraints& c) {
    auto image = format::open_image(path);
    REQUIRE_MESSAGE(image.has_value(), image.error().message);
    LoadPlan p{};
    REQUIRE(plan(read_file(path), c, &p) == ElfError::none);
    REQUIRE(p.count == image->segments.size());
    for (std::uint32_t i = 0; i < p.count; ++i) {
        const format::ImageSegment& s = image->segments[i];
        CAPTURE(i);
        CHECK(p.segments[i].address == s.paddr);
        CHECK(p.segments[i].file_offset == s.offset);
        CHECK(p.segments[i].file_size == s.filesz);
        CHECK(p.segments[i].mem_size == s.memsz);
        CHECK(p.segments[i].executable == ((s.flags & 1) != 0));
        CHECK_FALSE(p.segments[i].writable);
    }
    auto sections = image->sections;
    sections.push_back(image->manifest_section);
    for (const format::ImageSection& s : sections) {
        CAPTURE(s.name);
        int holders = 0;
        for (std::uint32_t i = 0; i < p.count; ++i)
            if (s.address >= p.segments[i].address &&
                s.address + s.size <= p.segments[i].address + p.segments[i].file_size &&
                s.offset - p.segments[i].file_offset == s.address - p.segments[i].address)
                ++holders;
        CHECK(holders == 1);
    }
    CHECK(p.entry == SVMKIT_IMAGE_BASE);
    CHECK(p.entry == image->manifest.entry);
}

std::string sample_kernel() {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe");
    return (exe.parent_path().parent_path() / "samples/kernel/sample-kernel.elf").string();
}

} // namespace

TEST_CASE("loader elf: a real simulated-platform secure image is planned by p_paddr") {
    REQUIRE_MESSAGE(std::filesystem::exists(sample_kernel()), sample_kernel());
    test::TempDir dir("loader");
    const std::string img = build_image(dir, "x86_64", sample_kernel(), std::nullopt);
    check_real_image(img, sim_constraints());
    // Its p_vaddr is the guest-virtual link address, not where it loads.
    const auto bytes = read_file(img);
    std::uint64_t vaddr = 0;
    std::memcpy(&vaddr, bytes.data() + phdr_at(0) + kPVaddr, 8);
    CHECK(vaddr == kVaBase + SVMKIT_IMAGE_BASE);
    LoadConstraints ppc = sim_constraints();
    ppc.machine = loader::kMachinePpc64;
    CHECK(plan(bytes, ppc) == ElfError::wrong_machine);
    // 32 MiB of RAM end inside the image's segments.
    LoadConstraints tiny = sim_constraints();
    tiny.ram_end = 0x4020000;
    CHECK(plan(bytes, tiny) == ElfError::segment_outside_ram);
}

TEST_CASE("loader elf: a real ppc64le secure image is planned") {
    test::TempDir dir("loader");
    // A raw "kernel" (any bytes) at load address 0: the ppc64le stub and
    // layout are real.
    test::write_bytes(dir.file("kernel.bin"), test::random_bytes(200000, 4));
    const std::string img = build_image(dir, "ppc64le", dir.file("kernel.bin"), "0");
    LoadConstraints c = sim_constraints();
    c.machine = loader::kMachinePpc64;
    check_real_image(img, c);
    CHECK(plan(read_file(img), sim_constraints()) == ElfError::wrong_machine);
}
