// Placing planned segments and the purgatory recheck (loader/segment_digest.h):
// the placed bytes are the file's plus zero fill, the recorded digests are
// SHA-256 of the placed ranges (checked against OpenSSL), and changing any
// one byte of a placed segment afterwards is caught with that segment's index.
#include "loader/segment_digest.h"

#include "guest/layout.h"
#include "signer/signer.hpp"
#include "test_support.hpp"
#include "wrapper/commands.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

using namespace svmkit;
using loader::ElfError;
using loader::LoadConstraints;
using loader::LoadPlan;
using loader::SegmentDigests;

namespace {

// Guest RAM for the test: a host buffer standing for [base, base + size).
struct FakeRam {
    std::uint64_t base = 0;
    std::vector<std::uint8_t> bytes;
    bool refuse = false; // to_pointer gives null for everything

    static std::uint8_t* to_pointer(void* ctx, std::uint64_t gpa, std::uint64_t size) {
        auto* ram = static_cast<FakeRam*>(ctx);
        if (ram->refuse || gpa < ram->base || gpa - ram->base > ram->bytes.size() ||
            size > ram->bytes.size() - (gpa - ram->base))
            return nullptr;
        return ram->bytes.data() + (gpa - ram->base);
    }
    std::uint8_t& at(std::uint64_t gpa) { return bytes.at(gpa - base); }
};

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

LoadConstraints constraints(std::uint16_t machine) {
    LoadConstraints c{};
    c.machine = machine;
    c.ram_end = 256ull << 20;
    c.reserved[0] = {0x3e00000, 0x4000000};
    c.reserved_count = 1;
    c.max_segment_size = 64ull << 20;
    return c;
}

std::vector<std::byte> sha256(const std::uint8_t* p, std::size_t n) {
    auto d = signer::digest(signer::DigestAlgorithm::sha256,
                            std::span<const std::byte>(reinterpret_cast<const std::byte*>(p), n));
    return d;
}

struct Placed {
    std::vector<std::uint8_t> file;
    LoadPlan plan{};
    SegmentDigests digests{};
    FakeRam ram;
};

Placed place(std::vector<std::uint8_t> file, std::uint16_t machine) {
    Placed out;
    out.file = std::move(file);
    REQUIRE(loader::plan_elf_load(out.file.data(), out.file.size(), constraints(machine),
                                  &out.plan) == ElfError::none);
    // RAM from the first segment to the end of the last, with a guard page of 0xAA.
    std::uint64_t lo = ~0ull, hi = 0;
    for (std::uint32_t i = 0; i < out.plan.count; ++i) {
        lo = std::min(lo, out.plan.segments[i].address);
        hi = std::max(hi, out.plan.segments[i].address + out.plan.segments[i].mem_size);
    }
    out.ram.base = lo - 0x1000;
    out.ram.bytes.assign(hi - lo + 0x2000, 0xAA);
    REQUIRE(loader::place_segments(out.file.data(), out.plan, FakeRam::to_pointer, &out.ram,
                                   &out.digests));
    return out;
}

std::string sample_kernel() {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe");
    return (exe.parent_path().parent_path() / "samples/kernel/sample-kernel.elf").string();
}

} // namespace

TEST_CASE("loader digest: placed bytes are the file's plus zero fill, digests are SHA-256") {
    Placed p = place(read_file(std::string(SVMKIT_TEST_DATA_DIR) + "/loader/good/minimal.elf"),
                     loader::kMachineX86_64);
    REQUIRE(p.digests.count == 2);
    for (std::uint32_t i = 0; i < p.plan.count; ++i) {
        const auto& s = p.plan.segments[i];
        CAPTURE(i);
        const std::uint8_t* placed = &p.ram.at(s.address);
        CHECK(std::memcmp(placed, p.file.data() + s.file_offset, s.file_size) == 0);
        for (std::uint64_t k = s.file_size; k < s.mem_size; ++k)
            REQUIRE(placed[k] == 0);
        const auto want = sha256(placed, s.mem_size);
        CHECK(std::memcmp(want.data(), p.digests.sha256[i], 32) == 0);
    }
    // Nothing outside the segments was written: the guard bytes are intact.
    CHECK(p.ram.at(p.ram.base) == 0xAA);
    CHECK(p.ram.at(p.plan.segments[0].address - 1) == 0xAA);
    CHECK(p.ram.at(p.plan.segments[0].address + p.plan.segments[0].mem_size) == 0xAA);
    CHECK(p.ram.at(p.plan.segments[1].address + p.plan.segments[1].mem_size) == 0xAA);
    CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == -1);
}

TEST_CASE("loader digest: purgatory catches one changed byte with the segment's index") {
    Placed p = place(read_file(std::string(SVMKIT_TEST_DATA_DIR) + "/loader/good/minimal.elf"),
                     loader::kMachineX86_64);
    const auto& text = p.plan.segments[0];
    const auto& data = p.plan.segments[1];
    struct Case {
        const char* what;
        std::uint64_t gpa;
        std::int32_t index;
    };
    const Case cases[] = {
        {"first byte of the text", text.address, 0},
        {"last byte of the text", text.address + text.mem_size - 1, 0},
        {"first byte of the data", data.address, 1},
        {"a byte of the zero fill", data.address + data.file_size, 1},
        {"last byte of the zero fill", data.address + data.mem_size - 1, 1},
    };
    for (const Case& c : cases) {
        CAPTURE(c.what);
        p.ram.at(c.gpa) ^= 0x01;
        CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == c.index);
        p.ram.at(c.gpa) ^= 0x01;
        CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == -1);
    }
    // A byte just outside every segment is not the purgatory's business.
    p.ram.at(data.address + data.mem_size) ^= 0x01;
    CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == -1);
    // The first changed segment is reported when several changed.
    p.ram.at(data.address) ^= 0x80;
    p.ram.at(text.address + 7) ^= 0x80;
    CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == 0);
    // A tampered digest table is a mismatch too.
    p.ram.at(data.address) ^= 0x80;
    p.ram.at(text.address + 7) ^= 0x80;
    p.digests.sha256[1][31] ^= 1;
    CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == 1);
    p.digests.sha256[1][31] ^= 1;
    // Memory that can no longer be reached, or fewer digests than segments.
    p.ram.refuse = true;
    CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == 0);
    p.ram.refuse = false;
    p.digests.count = 1;
    CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == 1);
}

TEST_CASE("loader digest: a real secure image, one byte changed in each segment") {
    REQUIRE_MESSAGE(std::filesystem::exists(sample_kernel()), sample_kernel());
    test::TempDir dir("loader");
    REQUIRE(cli::run_keygen({"ed25519", dir.file("k.key"), dir.file("k.pub")}).has_value());
    cli::BuildOptions b;
    b.kernel = sample_kernel();
    b.cmdline = "console=hvc0";
    b.key.keys = {dir.file("k.key")};
    b.output = dir.file("s.img");
    auto built = cli::run_build(b);
    REQUIRE_MESSAGE(built.has_value(), built.error().message);
    Placed p = place(read_file(b.output), loader::kMachineX86_64);
    REQUIRE(p.plan.count >= 4);
    for (std::uint32_t i = 0; i < p.plan.count; ++i) {
        const auto& s = p.plan.segments[i];
        const std::uint64_t gpa = s.address + s.mem_size / 2;
        p.ram.at(gpa) ^= 0x10;
        CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) ==
              static_cast<std::int32_t>(i));
        p.ram.at(gpa) ^= 0x10;
    }
    CHECK(loader::recheck_segments(p.plan, p.digests, FakeRam::to_pointer, &p.ram) == -1);
}

TEST_CASE("loader digest: placement refuses unreachable memory and its own source") {
    const auto file = read_file(std::string(SVMKIT_TEST_DATA_DIR) + "/loader/good/minimal.elf");
    LoadPlan plan{};
    REQUIRE(loader::plan_elf_load(file.data(), file.size(), constraints(loader::kMachineX86_64),
                                  &plan) == ElfError::none);
    SegmentDigests d{};
    SUBCASE("to_pointer refuses a segment: nothing is written") {
        FakeRam ram;
        ram.base = plan.segments[0].address;
        ram.bytes.assign(0x1000, 0xAA); // holds the text, not the data
        CHECK_FALSE(loader::place_segments(file.data(), plan, FakeRam::to_pointer, &ram, &d));
        CHECK(std::all_of(ram.bytes.begin(), ram.bytes.end(), [](auto v) { return v == 0xAA; }));
    }
    SUBCASE("a destination overlapping the file being read") {
        // "RAM" whose bytes are the file itself: the text's destination (file
        // offset 0x1000 + gpa - base) lands on the file's own bytes.
        std::vector<std::uint8_t> buffer(0x100000, 0);
        std::memcpy(buffer.data(), file.data(), file.size());
        struct Ctx {
            std::uint8_t* buf;
            std::uint64_t base;
        } ctx{buffer.data(), plan.segments[0].address - 0x800};
        auto to_pointer = [](void* c, std::uint64_t gpa, std::uint64_t) -> std::uint8_t* {
            auto* x = static_cast<Ctx*>(c);
            return x->buf + (gpa - x->base);
        };
        const auto before = buffer;
        CHECK_FALSE(loader::place_segments(buffer.data(), plan, to_pointer, &ctx, &d));
        CHECK(buffer == before);
    }
}

namespace {

// The file as the CLI reads it: through ElfSource, counting the largest read.
struct CountingSource {
    const std::vector<std::uint8_t>* file;
    std::uint32_t largest = 0;
    static void read(void* ctx, std::uint64_t offset, std::uint8_t* out, std::uint32_t n) {
        auto* s = static_cast<CountingSource*>(ctx);
        REQUIRE(offset + n <= s->file->size());
        std::memcpy(out, s->file->data() + offset, n);
        s->largest = std::max(s->largest, n);
    }
};

} // namespace

TEST_CASE("loader digest: digest_segment streams the digest place_segments records") {
    REQUIRE_MESSAGE(std::filesystem::exists(sample_kernel()), sample_kernel());
    test::TempDir dir("loader");
    REQUIRE(cli::run_keygen({"ed25519", dir.file("k.key"), dir.file("k.pub")}).has_value());
    // An initrd of 100 KiB and a few bytes: chunks of 4 KiB leave a remainder.
    std::vector<std::uint8_t> initrd(100 * 1024 + 7);
    for (std::size_t i = 0; i < initrd.size(); ++i)
        initrd[i] = static_cast<std::uint8_t>(i * 131 + 7);
    std::ofstream(dir.file("initrd"), std::ios::binary)
        .write(reinterpret_cast<const char*>(initrd.data()),
               static_cast<std::streamsize>(initrd.size()));
    cli::BuildOptions b;
    b.kernel = sample_kernel();
    b.initrd = dir.file("initrd");
    b.cmdline = "console=hvc0";
    b.key.keys = {dir.file("k.key")};
    b.output = dir.file("s.img");
    auto built = cli::run_build(b);
    REQUIRE_MESSAGE(built.has_value(), built.error().message);
    Placed p = place(read_file(b.output), loader::kMachineX86_64);

    CountingSource src{&p.file};
    const loader::ElfSource source{p.file.size(), &CountingSource::read, &src};
    // The plan through the reader is the plan from memory, reading headers only.
    LoadPlan streamed{};
    REQUIRE(loader::plan_elf_load(source, constraints(loader::kMachineX86_64), &streamed) ==
            ElfError::none);
    CHECK(src.largest <= loader::kMaxElfRead);
    REQUIRE(streamed.count == p.plan.count);
    for (std::uint32_t i = 0; i < p.plan.count; ++i) {
        const auto& got = streamed.segments[i];
        const auto& want = p.plan.segments[i];
        CHECK(got.file_offset == want.file_offset);
        CHECK(got.file_size == want.file_size);
        CHECK(got.address == want.address);
        CHECK(got.mem_size == want.mem_size);
        CHECK(got.executable == want.executable);
    }
    CHECK(streamed.entry == p.plan.entry);
    for (std::uint32_t chunk : {4096u, 1u << 20}) {
        std::vector<std::uint8_t> buffer(chunk);
        for (std::uint32_t i = 0; i < p.plan.count; ++i) {
            CAPTURE(chunk);
            CAPTURE(i);
            src.largest = 0;
            std::uint8_t d[loader::kSegmentDigestSize];
            loader::digest_segment(source, p.plan.segments[i], buffer.data(), chunk, d);
            CHECK(std::memcmp(d, p.digests.sha256[i], sizeof d) == 0);
            CHECK(src.largest <= chunk);
        }
    }
}
