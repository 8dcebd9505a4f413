// The svm-tools `svm add` archive (format/esm_cpio.*): byte-identical to the
// golden vector derived from svm-tools' procedure with GNU cpio
// (tests/data/esm/add/README.md), read back by the ultravisor's finder with
// the sealed initrd starting right after it, and member names checked.
#include "format/esm_cpio.hpp"
#include "platform/esm_initrd.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

using namespace svmkit;

namespace {

const std::string kGolden = SVMKIT_TEST_DATA_DIR "/esm/add";
constexpr std::uint32_t kGoldenMtime = 1700000000;

} // namespace

TEST_CASE("esm cpio: the archive and initrd equal svm-tools' golden vector") {
    const auto blob = test::read_bytes(kGolden + "/blob.dtb");
    const auto initrd = test::read_bytes(kGolden + "/initrd.bin");
    const auto expected = test::read_bytes(kGolden + "/expected.bin");
    auto archive = format::make_esm_cpio(blob, "blob.dtb", kGoldenMtime);
    REQUIRE(archive);
    std::vector<std::byte> whole = *archive;
    whole.insert(whole.end(), initrd.begin(), initrd.end());
    CHECK(whole.size() == expected.size());
    CHECK(whole == expected);
}

TEST_CASE("esm cpio: the ultravisor's finder sees the blob and the initrd after the archive") {
    const auto blob = test::read_bytes(kGolden + "/blob.dtb");
    const auto initrd = test::to_bytes("not an archive: the initrd proper");
    auto archive = format::make_esm_cpio(blob, "esmb.dtb", 0);
    REQUIRE(archive);
    CHECK(archive->size() % format::kEsmCpioBlockSize == 0);
    std::vector<std::byte> whole = *archive;
    whole.insert(whole.end(), initrd.begin(), initrd.end());
    auto found = platform::find_initrd_esm_blob(whole, "initrd");
    REQUIRE(found);
    REQUIRE(found->has_value());
    CHECK((*found)->path == "opt/ibm/pef/esmb.dtb");
    CHECK((*found)->payload_offset == archive->size());
    CHECK(format::encode_esm_blob((*found)->blob) == blob);
}

TEST_CASE("esm cpio: the mtime is every entry's but the trailer's") {
    auto archive = format::make_esm_cpio(test::to_bytes("x"), "b", 0x12345678);
    REQUIRE(archive);
    const std::string text(reinterpret_cast<const char*>(archive->data()), archive->size());
    std::size_t stamped = 0;
    for (std::size_t at = text.find("070701"); at != std::string::npos;
         at = text.find("070701", at + 1))
        stamped += text.substr(at + 6 + 5 * 8, 8) == "12345678" ? 1 : 0;
    CHECK(stamped == 5);
    CHECK(test::contains(text, "TRAILER!!!"));
}

TEST_CASE("esm cpio: a member name is one path component") {
    const auto blob = test::to_bytes("blob");
    for (const std::string& bad :
         {std::string(), std::string("."), std::string(".."), std::string("a/b"),
          std::string("/abs"), std::string(201, 'n'), std::string("nul\0byte", 8)}) {
        CAPTURE(bad);
        test::check_error(format::make_esm_cpio(blob, bad, 0), ExitCode::usage,
                          "cannot name the blob");
    }
    CHECK(format::make_esm_cpio(blob, std::string(200, 'n'), 0));
}
