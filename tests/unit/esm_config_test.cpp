// The svm-tools YAML (format/esm_config.*): the test tree's file parses; every
// deviation from the schema is refused with the file and entry named.
#include "format/esm_config.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>

using namespace svmkit;
using namespace svmkit::format;

namespace {

void expect_refused(const std::string& yaml, std::string_view text) {
    auto r = parse_esm_config(yaml, "svm_blob.yml");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ExitCode::malformed);
    CHECK_MESSAGE(r.error().message.find("svm_blob.yml") != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().message);
}

const std::string kOrigin = "- origin:\n    pubkey: o.pem\n";
const std::string kDigest = "- digest:\n    kernel: vmlinux\n    args: \"a b\"\n";

} // namespace

TEST_CASE("esm config: the svm-tools style YAML of the test tree parses") {
    const auto bytes = test::read_bytes(SVMKIT_TEST_DATA_DIR "/esm/svm_blob.yml");
    auto c = parse_esm_config(
        std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "svm_blob.yml");
    REQUIRE_MESSAGE(c.has_value(), c.error().message);
    CHECK(c->origin.pubkey == "keys/owner-pub.pem");
    CHECK(c->origin.seckey == "keys/owner-priv.pem");
    CHECK(c->origin.comment == "image owner");
    REQUIRE(c->recipients.size() == 1);
    CHECK(c->recipients[0].pubkey == "keys/tpm-pub.pem");
    CHECK(c->recipients[0].comment == "simulated machine tpm");
    CHECK(c->digest.args == "console=hvc0 svm=on swiotlb=8M svmkit.secret_file=disk-passphrase");
    CHECK(c->digest.initramfs == "boot/initrd.cpio.gz");
    CHECK(c->digest.kernel == "boot/sample-kernel.elf");
    REQUIRE(c->files.size() == 2);
    CHECK(c->files[0].name == "disk-passphrase");
    CHECK(c->files[1].path == "attachments/luks-key.b64");
    CHECK(c->files[1].comment.empty());
}

TEST_CASE("esm config: minimal entries, optional fields stay empty") {
    auto c = parse_esm_config(kOrigin + kDigest, "x");
    REQUIRE_MESSAGE(c.has_value(), c.error().message);
    CHECK_FALSE(c->origin.seckey.has_value());
    CHECK_FALSE(c->digest.initramfs.has_value());
    CHECK(c->recipients.empty());
    CHECK(c->files.empty());
}

TEST_CASE("esm config: every schema violation is refused") {
    expect_refused("", "expected one YAML document, found none");
    expect_refused("origin: {pubkey: x}\n", "expected a list");
    expect_refused("- [a, b]\n" + kOrigin + kDigest, "entry 1: expected one of");
    expect_refused("- origin: {pubkey: x}\n  digest: {kernel: k}\n", "entry 1: expected one of");
    expect_refused(kOrigin + kDigest + "- signer:\n    pubkey: x\n", "unknown entry 'signer'");
    expect_refused(kOrigin + kDigest + "- recipient:\n    key: x\n", "unknown field 'key'");
    expect_refused(kOrigin + kDigest + "- recipient:\n    comment: x\n",
                   "entry 3 (recipient): field 'pubkey' is missing");
    expect_refused(kOrigin + kDigest + "- recipient:\n    pubkey: [a]\n", "plain 'key: value'");
    expect_refused(kOrigin + kDigest + "- recipient: x\n", "expected a mapping");
    expect_refused(kOrigin + kDigest + "- file:\n    name: n\n", "field 'path' is missing");
    expect_refused(kOrigin + kOrigin + kDigest, "only one origin");
    expect_refused(kOrigin + kDigest + kDigest, "only one digest");
    expect_refused(kDigest, "no origin entry");
    expect_refused(kOrigin, "no digest entry");
    expect_refused(kOrigin + kDigest + "- recipient:\n    pubkey: a\n    pubkey: b\n", "");
    expect_refused("- origin: {pubkey: [\n", "not valid YAML");
    expect_refused(kOrigin + kDigest + "---\n" + kOrigin, "not one well-formed YAML document");
    expect_refused(std::string(kEsmMaxConfigSize + 1, ' '), "larger than");
    // yaml-cpp 0.7's LoadAll never returns on these (tests/fuzz/regressions/esm_yaml-*).
    expect_refused(", origin: {a: q k'}\n", "not one well-formed YAML document");
    expect_refused(",\n", "not one well-formed YAML document");
}
