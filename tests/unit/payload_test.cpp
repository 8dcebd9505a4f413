// Unit tests for format/payload: streaming file extents with zero gaps,
// copying while hashing, and the gzip round trip with its refusals.
#include "format/payload.hpp"
#include "base/output_file.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace svmkit;
using namespace svmkit::format;
using svmkit::test::check_error;
using svmkit::test::random_bytes;
using svmkit::test::TempDir;

namespace {

using Bytes = std::vector<std::byte>;

std::shared_ptr<const InputFile> open_file(const std::string& path) {
    auto f = InputFile::open(path);
    REQUIRE(f.has_value());
    return std::make_shared<const InputFile>(std::move(*f));
}

std::shared_ptr<const InputFile> file_with(const TempDir& dir, const std::string& name,
                                           const Bytes& data) {
    svmkit::test::write_bytes(dir.file(name), data);
    return open_file(dir.file(name));
}

// Collects a payload's stream, checking that chunks are bounded and non-empty.
Result<Bytes> collect(const PayloadSource& src) {
    Bytes out;
    std::size_t chunks = 0;
    auto r = stream_payload(src, [&](std::span<const std::byte> chunk) -> Result<void> {
        CHECK(chunk.size() > 0);
        CHECK(chunk.size() <= kStreamChunk);
        out.insert(out.end(), chunk.begin(), chunk.end());
        ++chunks;
        return {};
    });
    if (!r)
        return svmkit::unexpected(r.error());
    return out;
}

Result<Bytes> gunzip_all(const PayloadSource& src, std::uint64_t max_output) {
    Bytes out;
    auto n = gunzip_stream(src, max_output, [&](std::span<const std::byte> chunk) -> Result<void> {
        out.insert(out.end(), chunk.begin(), chunk.end());
        return {};
    });
    if (!n)
        return svmkit::unexpected(n.error());
    CHECK(*n == out.size());
    return out;
}

// The stored (compressed) bytes of a gzip_payload result.
Bytes stored_bytes(const CompressedPayload& c) {
    auto b = collect(c.stored);
    REQUIRE(b.has_value());
    CHECK(b->size() == c.stored.size);
    return *b;
}

} // namespace

TEST_CASE("payload: file extents with zero gaps stream exactly") {
    TempDir dir("payload");
    const Bytes file_data = random_bytes(5u << 20, 1);
    auto file = file_with(dir, "input", file_data);

    struct Case {
        const char* label;
        std::vector<Extent> extents;
        std::uint64_t size;
    };
    const std::uint64_t mib = 1u << 20;
    const std::vector<Case> cases = {
        // Gap at the start, extents from the middle of the file (one longer
        // than a chunk), a gap longer than a chunk between them, gap at the end.
        {"gaps everywhere",
         {{100, 5000, 3 * mib / 2}, {2 * mib + 3, 3 * mib / 2 + 7, 3 * mib}, {17, 1, 5 * mib}},
         5 * mib + 12345},
        {"adjacent extents, no gaps", {{0, 10, 0}, {4 * mib, 20, 10}, {10, 30, 30}}, 60},
        {"the whole file", {{0, 5 * mib, 0}}, 5 * mib},
        {"only zeros", {}, 2 * mib + 1},
        {"empty", {}, 0},
        {"extent ending exactly at the size", {{1, 1, 99}}, 100},
    };
    for (const Case& c : cases) {
        CAPTURE(c.label);
        PayloadSource src;
        src.label = "input";
        src.file = file;
        src.size = c.size;
        src.extents = c.extents;
        Bytes expected(c.size, std::byte{0});
        for (const Extent& e : c.extents)
            std::copy_n(file_data.begin() + static_cast<std::ptrdiff_t>(e.file_offset), e.length,
                        expected.begin() + static_cast<std::ptrdiff_t>(e.image_offset));
        auto got = collect(src);
        REQUIRE(got.has_value());
        CHECK(got->size() == expected.size());
        CHECK(*got == expected);

        for (auto algo : {signer::DigestAlgorithm::sha256, signer::DigestAlgorithm::sha512}) {
            auto d = copy_and_hash(src, algo, nullptr, 0);
            REQUIRE(d.has_value());
            CHECK(*d == signer::digest(algo, expected));
        }
    }
}

TEST_CASE("payload: copy_and_hash writes at the offset") {
    TempDir dir("payload");
    const Bytes data = random_bytes(3u << 20, 2);
    auto file = file_with(dir, "input", data);
    PayloadSource src;
    src.label = "input";
    src.file = file;
    src.size = 1500000;
    src.extents = {{1000, 700000, 4096}, {2000000, 300000, 1000000}};

    auto out = OutputFile::create(dir.file("out"));
    REQUIRE(out.has_value());
    const std::uint64_t offset = 0x12345;
    auto d = copy_and_hash(src, signer::DigestAlgorithm::sha384, &*out, offset);
    REQUIRE(d.has_value());
    REQUIRE(out->commit().has_value());

    Bytes expected(src.size, std::byte{0});
    std::copy_n(data.begin() + 1000, 700000, expected.begin() + 4096);
    std::copy_n(data.begin() + 2000000, 300000, expected.begin() + 1000000);
    CHECK(*d == signer::digest(signer::DigestAlgorithm::sha384, expected));
    const Bytes written = svmkit::test::read_bytes(dir.file("out"));
    REQUIRE(written.size() == offset + expected.size());
    CHECK(std::all_of(written.begin(), written.begin() + offset,
                      [](std::byte b) { return b == std::byte{0}; }));
    CHECK(Bytes(written.begin() + offset, written.end()) == expected);
}

TEST_CASE("payload: memory payloads, sink errors and short files") {
    const Bytes data = random_bytes((2u << 20) + 3, 3);
    const PayloadSource mem = PayloadSource::from_memory("mem", data);
    CHECK(mem.size == data.size());
    auto got = collect(mem);
    REQUIRE(got.has_value());
    CHECK(*got == data);
    auto d = copy_and_hash(mem, signer::DigestAlgorithm::sha256, nullptr, 0);
    REQUIRE(d.has_value());
    CHECK(*d == signer::digest(signer::DigestAlgorithm::sha256, data));

    // The sink's error ends the stream and is returned as it is.
    int calls = 0;
    auto r = stream_payload(mem, [&](std::span<const std::byte>) -> Result<void> {
        ++calls;
        return fail(ExitCode::io, "sink full");
    });
    check_error(r, ExitCode::io, "sink full");
    CHECK(calls == 1);

    // An extent beyond the end of the file is a truncated input.
    TempDir dir("payload");
    auto file = file_with(dir, "short", random_bytes(1000, 4));
    PayloadSource src = PayloadSource::from_file(file);
    CHECK(src.size == 1000);
    CHECK(src.label == dir.file("short"));
    src.size = 2000;
    src.extents = {{500, 1000, 0}};
    check_error(collect(src), ExitCode::malformed, "truncated");
}

TEST_CASE("payload: gzip round trip") {
    TempDir dir("payload");
    struct Case {
        const char* label;
        Bytes data;
    };
    // Several MiB mixing incompressible and highly compressible runs, so
    // compressed chunks and output chunks fall at unrelated places.
    Bytes big = random_bytes(3u << 20, 5);
    big.resize(big.size() + (2u << 20), std::byte{0x41});
    Bytes more = random_bytes((1u << 20) + 17, 6);
    big.insert(big.end(), more.begin(), more.end());
    std::vector<Case> cases = {
        {"several MiB", big},
        {"empty", {}},
        {"one byte", {std::byte{7}}},
        {"small text", svmkit::test::to_bytes("console=hvc0 root=/dev/vda\n")},
    };
    for (const Case& c : cases) {
        CAPTURE(c.label);
        for (bool from_file : {false, true}) {
            CAPTURE(from_file);
            PayloadSource src;
            if (from_file) {
                src = PayloadSource::from_file(file_with(dir, "plain", c.data));
            } else {
                src = PayloadSource::from_memory("mem", c.data);
            }
            auto gz = gzip_payload(src, signer::DigestAlgorithm::sha256);
            REQUIRE(gz.has_value());
            CHECK(gz->unpacked_digest == signer::digest(signer::DigestAlgorithm::sha256, c.data));
            CHECK(gz->stored.label == src.label + " (gzip)");
            const Bytes stored = stored_bytes(*gz);
            // A gzip member: magic, deflate, no name, mtime 0.
            REQUIRE(stored.size() >= 18);
            CHECK(stored[0] == std::byte{0x1f});
            CHECK(stored[1] == std::byte{0x8b});
            CHECK(stored[2] == std::byte{8});
            CHECK(stored[3] == std::byte{0}); // FLG: no name, no extra
            CHECK(std::all_of(stored.begin() + 4, stored.begin() + 8,
                              [](std::byte b) { return b == std::byte{0}; }));
            if (c.data.size() > 1000000)
                CHECK(stored.size() < c.data.size());

            auto back = gunzip_all(gz->stored, c.data.size());
            REQUIRE_MESSAGE(back.has_value(), back.error().message);
            CHECK(back->size() == c.data.size());
            CHECK(*back == c.data);

            // Deterministic: the same input compresses to the same bytes.
            auto again = gzip_payload(src, signer::DigestAlgorithm::sha256);
            REQUIRE(again.has_value());
            CHECK(stored_bytes(*again) == stored);
        }
    }
}

TEST_CASE("payload: gzip output is readable by gzip(1)") {
    if (!svmkit::test::have_tool("gzip")) {
        MESSAGE("gzip not installed; skipped");
        return;
    }
    TempDir dir("payload");
    const Bytes data = random_bytes(300000, 7);
    auto gz =
        gzip_payload(PayloadSource::from_memory("mem", data), signer::DigestAlgorithm::sha256);
    REQUIRE(gz.has_value());
    svmkit::test::write_bytes(dir.file("x.gz"), stored_bytes(*gz));
    int status = 0;
    svmkit::test::run_capture("gzip -d " + dir.file("x.gz"), status);
    REQUIRE(status == 0);
    CHECK(svmkit::test::read_bytes(dir.file("x")) == data);

    // And the other way: what gzip(1) writes, gunzip_stream reads.
    svmkit::test::write_bytes(dir.file("y"), data);
    svmkit::test::run_capture("gzip -9 -n " + dir.file("y"), status);
    REQUIRE(status == 0);
    auto back = gunzip_all(PayloadSource::from_file(open_file(dir.file("y.gz"))), data.size());
    REQUIRE(back.has_value());
    CHECK(*back == data);
}

TEST_CASE("payload: gunzip_stream refuses bad streams") {
    TempDir dir("payload");
    const Bytes data = random_bytes(200000, 8);
    Bytes text(400000, std::byte{0});
    for (std::size_t i = 0; i < text.size(); ++i)
        text[i] = static_cast<std::byte>("svmkit "[i % 7]);
    auto gz =
        gzip_payload(PayloadSource::from_memory("mem", data), signer::DigestAlgorithm::sha256);
    REQUIRE(gz.has_value());
    const Bytes good = stored_bytes(*gz);
    auto gz_text =
        gzip_payload(PayloadSource::from_memory("mem", text), signer::DigestAlgorithm::sha256);
    REQUIRE(gz_text.has_value());
    const Bytes good_text = stored_bytes(*gz_text);
    auto mem = [](Bytes b) {
        return PayloadSource::from_memory("kernel.gz", std::move(b));
    };

    SUBCASE("control: the good streams unpack") {
        CHECK(gunzip_all(mem(good), data.size()).has_value());
        CHECK(gunzip_all(mem(good_text), text.size()).has_value());
    }
    SUBCASE("corrupt deflate data") {
        Bytes b = good_text;
        for (std::size_t i = 12; i < b.size() - 8; i += 7)
            b[i] = static_cast<std::byte>(0xff);
        check_error(gunzip_all(mem(b), text.size()), ExitCode::malformed,
                    "kernel.gz: corrupt gzip data");
    }
    SUBCASE("bad CRC") {
        Bytes b = good;
        b[b.size() - 8] ^= std::byte{1};
        check_error(gunzip_all(mem(b), data.size()), ExitCode::malformed,
                    "kernel.gz: corrupt gzip data (incorrect data check)");
    }
    SUBCASE("bad length in the trailer") {
        Bytes b = good;
        b[b.size() - 4] ^= std::byte{1};
        check_error(gunzip_all(mem(b), data.size()), ExitCode::malformed,
                    "kernel.gz: corrupt gzip data");
    }
    SUBCASE("not gzip") {
        check_error(gunzip_all(mem(data), data.size()), ExitCode::malformed,
                    "kernel.gz: corrupt gzip data");
    }
    SUBCASE("truncated stream") {
        for (std::size_t cut :
             {std::size_t{1}, std::size_t{4}, std::size_t{8}, good.size() / 2, good.size() - 10}) {
            CAPTURE(cut);
            Bytes b(good.begin(), good.end() - static_cast<std::ptrdiff_t>(cut));
            check_error(gunzip_all(mem(b), data.size()), ExitCode::malformed,
                        "kernel.gz: gzip stream is truncated");
        }
        check_error(gunzip_all(mem({}), 100), ExitCode::malformed,
                    "kernel.gz: gzip stream is truncated");
    }
    SUBCASE("trailing garbage in the same chunk") {
        for (Bytes tail : {Bytes{std::byte{0}}, Bytes{std::byte{'x'}}, good}) {
            CAPTURE(tail.size());
            Bytes b = good;
            b.insert(b.end(), tail.begin(), tail.end());
            check_error(gunzip_all(mem(b), 2 * data.size()), ExitCode::malformed,
                        "kernel.gz: bytes after the end of the gzip stream");
        }
    }
    SUBCASE("trailing bytes in a later chunk") {
        // The stream as one file extent followed by more bytes (an extent, or
        // a zero gap), each delivered as separate chunks.
        Bytes file_data = good;
        file_data.push_back(std::byte{'x'});
        auto file = file_with(dir, "gz", file_data);
        PayloadSource src;
        src.label = "kernel.gz";
        src.file = file;
        src.extents = {{0, good.size(), 0}, {good.size(), 1, good.size()}};
        src.size = good.size() + 1;
        check_error(gunzip_all(src, data.size()), ExitCode::malformed,
                    "kernel.gz: bytes after the end of the gzip stream");
        src.extents = {{0, good.size(), 0}};
        src.size = good.size() + 4096;
        check_error(gunzip_all(src, data.size()), ExitCode::malformed,
                    "kernel.gz: bytes after the end of the gzip stream");
        src.size = good.size();
        auto ok = gunzip_all(src, data.size());
        REQUIRE(ok.has_value());
        CHECK(*ok == data);
    }
    SUBCASE("output larger than max_output") {
        check_error(
            gunzip_all(mem(good), data.size() - 1), ExitCode::malformed,
            fmt::format("kernel.gz: unpacks to more than the {} bytes expected", data.size() - 1));
        check_error(gunzip_all(mem(good_text), 1000), ExitCode::malformed,
                    "unpacks to more than the 1000 bytes expected");
        check_error(gunzip_all(mem(good_text), 0), ExitCode::malformed,
                    "unpacks to more than the 0 bytes expected");
        // The refusal comes before the sink sees more than max_output bytes.
        std::uint64_t seen = 0;
        auto r = gunzip_stream(mem(good_text), 1000, [&](std::span<const std::byte> c) {
            seen += c.size();
            return Result<void>{};
        });
        CHECK_FALSE(r.has_value());
        CHECK(seen <= 1000);
        // Exactly max_output is fine.
        CHECK(gunzip_all(mem(good_text), text.size()).has_value());
    }
    SUBCASE("the sink's error is returned") {
        auto r = gunzip_stream(mem(good), data.size(), [](std::span<const std::byte>) {
            return Result<void>(fail(ExitCode::io, "disk full"));
        });
        check_error(r, ExitCode::io, "disk full");
    }
}
