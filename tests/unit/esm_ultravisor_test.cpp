// The simulated ultravisor with ibm,esm lockboxes (platform/esm_check.*) and
// UV_ESMB_GET_FILE (platform/ultracalls.cpp): the machine key opens its
// lockbox in any position, each failure cause has its own EsmFailure, and the
// secret files are served in 64-byte chunks for as many calls as the guest
// makes.
#include "format/esm_crypto.hpp"
#include "format/esm_digest.hpp"
#include "format/fdt_codec.hpp"
#include "format/image_reader.hpp"
#include "format/image_writer.hpp"
#include "format/stub_image.hpp"
#include "guest/uv_abi.h"
#include "platform/guest_memory.hpp"
#include "platform/esm_initrd.hpp"
#include "platform/image_loader.hpp"
#include "platform/ultracalls.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <functional>

using namespace svmkit;
using namespace svmkit::platform;

namespace {

constexpr std::uint64_t kMemory = 128ull << 20;
constexpr std::uint64_t kKbase = 0x4000000;
constexpr std::uint64_t kFdtAt = 0x1000000;
const std::string kCmdline = "console=hvc0 svm=on svmkit.secret_file=pass";
const std::string kData = SVMKIT_TEST_DATA_DIR "/esm";

std::shared_ptr<const format::EsmKey> new_rsa_key(const test::TempDir& dir,
                                                  const std::string& name) {
    signer::PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
    REQUIRE(key != nullptr);
    std::FILE* f = std::fopen(dir.file(name).c_str(), "w");
    REQUIRE(f != nullptr);
    CHECK(PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
    std::fclose(f);
    auto k = format::load_esm_private_key(dir.file(name), {});
    REQUIRE_MESSAGE(k.has_value(), k.error().message);
    return std::make_shared<const format::EsmKey>(std::move(*k));
}

// Four machine keys, made once for all the tests (RSA key generation is slow).
std::vector<std::shared_ptr<const format::EsmKey>> shared_keys() {
    static const std::vector<std::shared_ptr<const format::EsmKey>> keys = [] {
        test::TempDir dir("esm-keys");
        std::vector<std::shared_ptr<const format::EsmKey>> v;
        for (int i = 0; i < 4; ++i)
            v.push_back(new_rsa_key(dir, "machine" + std::to_string(i) + ".key"));
        return v;
    }();
    return keys;
}

// The public half of a private EsmKey, as a recipient.
format::EsmKey public_of(const format::EsmKey& k) {
    format::EsmKey pub;
    EVP_PKEY_up_ref(k.key.get());
    pub.key.reset(k.key.get());
    pub.fingerprint = k.fingerprint;
    pub.bits = k.bits;
    pub.path = k.path;
    return pub;
}

// A newc member (cpio(5)): header, name, data, each padded to 4 bytes.
void newc_member(std::vector<std::byte>& out, const std::string& name, std::uint32_t mode,
                 std::span<const std::byte> data) {
    const std::string h =
        fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}"
                    "{:08X}{:08X}{:08X}{:08X}{:08X}",
                    1, mode, 0, 0, 1, 0, data.size(), 0, 0, 0, 0, name.size() + 1, 0);
    auto append = [&out](std::span<const std::byte> b) {
        out.insert(out.end(), b.begin(), b.end());
        while (out.size() % 4 != 0)
            out.push_back(std::byte{0});
    };
    std::vector<std::byte> header = test::to_bytes(h + name);
    header.push_back(std::byte{0});
    append(header);
    append(data);
}

// svm-tools' esmb archive: opt/ibm/pef/esmb.dtb (after its directories),
// the trailer, padded to 512 bytes as cpio pads its output.
std::vector<std::byte> esm_cpio(std::span<const std::byte> blob) {
    std::vector<std::byte> out;
    for (const char* dir : {"opt", "opt/ibm", "opt/ibm/pef"})
        newc_member(out, dir, 040755, {});
    newc_member(out, "opt/ibm/pef/esmb.dtb", 0100644, blob);
    newc_member(out, "TRAILER!!!", 0, {});
    out.resize((out.size() + 511) / 512 * 512, std::byte{0});
    return out;
}

// What the sealed digests say, changed by a test when it wants a mismatch.
struct Sealed {
    std::vector<std::byte> kernel;
    std::optional<std::vector<std::byte>> initrd;
    std::string bootargs = kCmdline;
};

struct EsmMachine {
    test::TempDir dir{"esm-uv"};
    signer::PrivateKey signer_key = *signer::PrivateKey::generate(signer::KeyType::ed25519);
    std::vector<std::shared_ptr<const format::EsmKey>> keys; // lockbox-1..3
    std::shared_ptr<const format::EsmKey> stranger;
    std::vector<std::byte> secret = test::random_bytes(5000, 77);
    format::SecureImage image;
    std::optional<GuestMemory> memory;
    PlacedImage placed;
    EsmPolicy policy;

    // `change` edits what the digests seal; `edit_blob` the sealed blob
    // itself, before the image is written and signed.
    // `blob_in_initrd`: the blob goes into a cpio prepended to the initrd
    // (svm-tools' way) instead of beside the manifest; the digests seal the
    // initrd after that archive.
    explicit EsmMachine(format::Compression compression = format::Compression::none,
                        const std::function<void(Sealed&)>& change = {},
                        const std::function<void(format::EsmBlob&)>& edit_blob = {},
                        bool blob_in_initrd = false) {
        keys = shared_keys();
        stranger = keys.back();
        keys.pop_back();

        const auto kernel_bytes = test::random_bytes(300000, 1);
        const auto initrd_bytes = test::random_bytes(70000, 2);
        format::ImageBuildRequest req;
        req.arch = format::host_arch();
        req.stub = *format::embedded_stub(req.arch);
        req.output_path = dir.file("img");
        req.keys = {&signer_key};
        format::ComponentInput kernel;
        kernel.kind = format::ComponentKind::kernel;
        kernel.kernel = format::KernelPlacement{0x200000, 300000, 0};
        const auto image_source = format::PayloadSource::from_memory("kernel", kernel_bytes);
        if (compression == format::Compression::gzip) {
            auto packed = format::gzip_payload(image_source, signer::DigestAlgorithm::sha256);
            REQUIRE(packed.has_value());
            kernel.stored = packed->stored;
            kernel.compression = compression;
            kernel.unpacked_size = kernel_bytes.size();
            kernel.unpacked_digest = packed->unpacked_digest;
        } else {
            kernel.stored = image_source;
        }
        format::ComponentInput initrd;
        initrd.kind = format::ComponentKind::initrd;
        format::ComponentInput cmdline;
        cmdline.kind = format::ComponentKind::cmdline;
        cmdline.stored = format::PayloadSource::from_memory("cmdline", test::to_bytes(kCmdline));

        Sealed sealed;
        sealed.kernel = kernel_bytes;
        sealed.initrd = initrd_bytes;
        if (change)
            change(sealed);
        std::optional<format::PayloadSource> sealed_initrd;
        if (sealed.initrd)
            sealed_initrd = format::PayloadSource::from_memory("initrd", *sealed.initrd);
        auto digests =
            format::compute_esm_digests(format::PayloadSource::from_memory("kernel", sealed.kernel),
                                        sealed_initrd, sealed.bootargs);
        REQUIRE(digests.has_value());

        std::vector<format::EsmKey> pubs;
        for (const auto& k : keys)
            pubs.push_back(public_of(*k));
        format::EsmMakeRequest make;
        for (const auto& p : pubs)
            make.recipients.push_back({&p, "machine"});
        make.digests = *digests;
        make.files = {{"pass", "", secret}, {"other", "", test::to_bytes("x")}};
        auto blob = format::make_esm_blob(make);
        REQUIRE(blob.has_value());
        if (edit_blob)
            edit_blob(*blob);
        if (blob_in_initrd) {
            auto with_blob = esm_cpio(format::encode_esm_blob(*blob));
            with_blob.insert(with_blob.end(), initrd_bytes.begin(), initrd_bytes.end());
            initrd.stored = format::PayloadSource::from_memory("initrd", with_blob);
        } else {
            initrd.stored = format::PayloadSource::from_memory("initrd", initrd_bytes);
            req.esm = std::move(*blob);
        }
        req.payloads = {kernel, initrd, cmdline};

        REQUIRE(format::build_image(req).has_value());
        auto opened = format::open_image(req.output_path);
        REQUIRE_MESSAGE(opened.has_value(), opened.error().message);
        image = std::move(*opened);
        auto mem = GuestMemory::create(kMemory);
        REQUIRE_MESSAGE(mem.has_value(), mem.error().message);
        memory.emplace(std::move(*mem));
        placed = *place_image(*memory, image, kKbase);
        policy.verify.trusted_keys.push_back(
            *signer::PublicKey::from_der(signer_key.public_key().spki_der(), "signer"));
        write_chosen(kCmdline);
    }

    void write_chosen(const std::string& bootargs) {
        format::fdt::FdtBuilder b;
        b.finish_reservemap();
        b.begin("");
        b.begin("chosen");
        b.prop_string("bootargs", bootargs);
        b.prop_u64("linux,esm-blob-start", placed.manifest_start);
        b.prop_u64("linux,esm-blob-end", placed.manifest_end);
        b.end();
        b.end();
        REQUIRE(memory->write(kFdtAt, b.finish()).has_value());
    }

    // Flips one byte of `needle`'s first occurrence in the loaded blob.
    void flip_in_blob(std::span<const std::byte> needle, std::size_t index) {
        auto blob =
            memory->range(placed.manifest_start, placed.manifest_end - placed.manifest_start);
        REQUIRE(blob.has_value());
        auto it = std::search(blob->begin(), blob->end(), needle.begin(), needle.end());
        REQUIRE(it != blob->end());
        it[static_cast<std::ptrdiff_t>(index)] ^= std::byte{0x20};
    }

    EsmResult esm() {
        auto r = enter_secure_mode(*memory, kKbase, kFdtAt, policy);
        REQUIRE_MESSAGE(r.has_value(), r.error().message);
        return std::move(*r);
    }
};

void expect_failure(const EsmResult& r, EsmFailure want, std::string_view text) {
    CHECK_MESSAGE(r.failure == want, esm_failure_name(r.failure), ": ", r.message);
    CHECK_MESSAGE(r.message.find(text) != std::string::npos, r.message);
    CHECK(esm_failure_code(r.failure) == U_PARAMETER);
}

long get_file(Ultravisor& uv, const std::string& name, std::uint64_t offset,
              std::vector<std::byte>* out = nullptr) {
    svmkit_regs regs{};
    regs.r[3] = UV_ESMB_GET_FILE;
    regs.r[4] = offset;
    svmkit_uv_pack_bytes(reinterpret_cast<const std::uint8_t*>(name.data()), name.size(),
                         &regs.r[5], UV_ESMB_NAME_MAX / 8);
    auto r = uv.ucall(regs);
    REQUIRE(r.has_value());
    const long n = static_cast<long>(regs.r[3]);
    if (out != nullptr && n > 0) {
        std::uint8_t chunk[UV_ESMB_CHUNK];
        svmkit_uv_unpack_bytes(&regs.r[4], UV_ESMB_CHUNK / 8, chunk);
        const auto* b = reinterpret_cast<const std::byte*>(chunk);
        out->insert(out->end(), b, b + n);
    }
    return n;
}

} // namespace

TEST_CASE("esm ultravisor: the machine key opens its lockbox in any position") {
    for (auto compression : {format::Compression::none, format::Compression::gzip}) {
        EsmMachine vm(compression);
        REQUIRE(vm.image.manifest.esm.lockboxes.size() == 3);
        for (std::size_t i = 0; i < vm.keys.size(); ++i) {
            CAPTURE(i);
            vm.policy.machine_key = vm.keys[i];
            vm.memory.reset(); // one guest memory at a time: it has a fixed address
            vm.memory.emplace(*GuestMemory::create(kMemory));
            vm.placed = *place_image(*vm.memory, vm.image, kKbase);
            vm.write_chosen(kCmdline);
            EsmResult r = vm.esm();
            REQUIRE_MESSAGE(r.ok(), esm_failure_name(r.failure), ": ", r.message);
            CHECK(r.esm_lockbox == "lockbox-" + std::to_string(i + 1));
            REQUIRE(r.esm_files.size() == 2);
            CHECK(r.esm_files[0].name == "pass");
            CHECK(r.esm_files[0].data == vm.secret);
        }
    }
}

TEST_CASE("esm ultravisor: no key, or a key without a lockbox, is esm-no-lockbox") {
    {
        EsmMachine vm;
        expect_failure(vm.esm(), EsmFailure::esm_no_lockbox, "this machine has no key");
    }
    EsmMachine vm;
    vm.policy.machine_key = vm.stranger;
    expect_failure(vm.esm(), EsmFailure::esm_no_lockbox, "no lockbox for key");
    CHECK(esm_failure_name(EsmFailure::esm_no_lockbox) == "esm-no-lockbox");
}

TEST_CASE("esm ultravisor: a damaged lockbox is esm-unwrap-failed") {
    EsmMachine vm;
    vm.policy.machine_key = vm.keys[1];
    vm.flip_in_blob(vm.image.manifest.esm.lockboxes[1].encrypted_symkey, 100);
    expect_failure(vm.esm(), EsmFailure::esm_unwrap_failed, "lockbox-2");
}

TEST_CASE("esm ultravisor: a signed image whose ciphertext, IV or MAC does not open is "
          "esm-auth-failed") {
    for (int part = 0; part < 4; ++part) {
        CAPTURE(part);
        // Damaged before signing: the signatures hold, the GCM tag does not.
        EsmMachine vm(format::Compression::none, {}, [part](format::EsmBlob& b) {
            auto& target = part == 0   ? b.digests->ciphertext
                           : part == 1 ? b.digests->iv
                           : part == 2 ? b.digests->mac
                                       : b.files[0].sealed.ciphertext;
            target[target.size() / 2] ^= std::byte{0x20};
        });
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_auth_failed,
                       part == 3 ? "file pass" : "/digest/digests-fdt");
    }
}

TEST_CASE("esm ultravisor: the sealed nodes of a signed image cannot change: bad-signature") {
    for (int part = 0; part < 4; ++part) {
        CAPTURE(part);
        EsmMachine vm;
        vm.policy.machine_key = vm.keys[0];
        const format::EsmSealed& d = *vm.image.manifest.esm.digests;
        const format::EsmSealed& f = vm.image.manifest.esm.files[0].sealed;
        const auto& target = part == 0   ? d.ciphertext
                             : part == 1 ? d.iv
                             : part == 2 ? d.mac
                                         : f.ciphertext;
        vm.flip_in_blob(target, target.size() / 2);
        expect_failure(vm.esm(), EsmFailure::bad_signature, "does not verify");
    }
}

TEST_CASE("esm ultravisor: sealed digests that do not match are refused, each distinctly") {
    {
        EsmMachine vm(format::Compression::none, [](Sealed& s) { s.kernel[5] ^= std::byte{1}; });
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_kernel_digest_mismatch, "loadable image");
    }
    {
        EsmMachine vm(format::Compression::gzip, [](Sealed& s) { s.kernel.push_back({}); });
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_kernel_digest_mismatch, "300000 bytes");
    }
    {
        EsmMachine vm(format::Compression::none, [](Sealed& s) { (*s.initrd)[0] ^= std::byte{1}; });
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_initrd_digest_mismatch, "initrd SHA-512");
    }
    {
        EsmMachine vm(format::Compression::none, [](Sealed& s) { s.initrd.reset(); });
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_initrd_digest_mismatch, "seals none");
    }
    {
        EsmMachine vm(format::Compression::none, [](Sealed& s) { s.bootargs += " x"; });
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_bootargs_mismatch, "bootargs");
    }
}

TEST_CASE("esm ultravisor: UV_ESMB_GET_FILE serves 64-byte chunks, thousands of times") {
    EsmMachine vm;
    vm.policy.machine_key = vm.keys[2];
    Ultravisor uv(*vm.memory, std::move(vm.policy));
    CHECK(get_file(uv, "pass", 0) == U_PERMISSION); // not secure yet
    svmkit_regs regs{};
    regs.r[3] = UV_ESM;
    regs.r[4] = kKbase;
    regs.r[5] = kFdtAt;
    REQUIRE(uv.ucall(regs).has_value());
    REQUIRE_MESSAGE(uv.secure(), uv.esm()->message);
    CHECK(uv.esm()->esm_files.empty()); // the secrets stay inside the ultravisor

    std::uint64_t calls = 0;
    for (int read = 0; read < 30; ++read) {
        std::vector<std::byte> got;
        std::uint64_t offset = 0;
        for (;;) {
            const long n = get_file(uv, "pass", offset, &got);
            ++calls;
            REQUIRE(n >= 0);
            REQUIRE(n <= UV_ESMB_CHUNK);
            if (n == 0)
                break;
            offset += static_cast<std::uint64_t>(n);
        }
        REQUIRE(got == vm.secret);
    }
    CHECK(calls > 2000);
    // Any offset, in any order; the end gives 0, past it U_PARAMETER.
    std::vector<std::byte> tail;
    CHECK(get_file(uv, "pass", vm.secret.size() - 8, &tail) == 8);
    CHECK(std::equal(tail.begin(), tail.end(), vm.secret.end() - 8));
    CHECK(get_file(uv, "pass", vm.secret.size()) == 0);
    CHECK(get_file(uv, "pass", vm.secret.size() + 1) == U_PARAMETER);
    CHECK(get_file(uv, "nope", 0) == U_PARAMETER);
    CHECK(get_file(uv, "pas", 0) == U_PARAMETER);
    CHECK(get_file(uv, std::string(64, 'p'), 0) == U_PARAMETER);
    std::vector<std::byte> one;
    CHECK(get_file(uv, "other", 0, &one) == 1);
    CHECK(one == test::to_bytes("x"));
}

TEST_CASE("esm ultravisor: the register packing is big-endian, first byte most significant") {
    const std::uint8_t name[] = {'f', 'i', 'l', 'e', '-', '1', 'x', 'y', 'z'};
    std::uint64_t regs[8];
    svmkit_uv_pack_bytes(name, sizeof name, regs, 8);
    CHECK(regs[0] == 0x66696c652d317879ull);
    CHECK(regs[1] == 0x7a00000000000000ull);
    CHECK(regs[7] == 0);
    std::uint8_t back[64];
    svmkit_uv_unpack_bytes(regs, 8, back);
    CHECK(std::equal(name, name + sizeof name, back));
    CHECK(back[9] == 0);
}

TEST_CASE("esm ultravisor: a blob in a cpio prepended to the initrd (svm-tools' way)") {
    {
        EsmMachine vm(format::Compression::none, {}, {}, true);
        REQUIRE(vm.image.manifest.esm.lockboxes.empty());
        vm.policy.machine_key = vm.keys[2];
        EsmResult r = vm.esm();
        REQUIRE_MESSAGE(r.ok(), esm_failure_name(r.failure), ": ", r.message);
        CHECK(r.esm_lockbox == "lockbox-3");
        CHECK(r.esm_source == "initrd:opt/ibm/pef/esmb.dtb");
        CHECK(r.esm_file_names == std::vector<std::string>{"pass", "other"});
        REQUIRE(r.esm_files.size() == 2);
        CHECK(r.esm_files[0].data == vm.secret);
    }
    {
        // Found and checked like the image's own nodes: no key, no boot.
        EsmMachine vm(format::Compression::none, {}, {}, true);
        expect_failure(vm.esm(), EsmFailure::esm_no_lockbox, "this machine has no key");
    }
    {
        // The sealed initrd is what follows the archive, not the whole initrd.
        EsmMachine vm(
            format::Compression::none, [](Sealed& s) { s.initrd->push_back({}); }, {}, true);
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_initrd_digest_mismatch, "initrd SHA-512");
    }
    {
        // A member under opt/ibm/pef that is not a blob: refused, named.
        EsmMachine vm(
            format::Compression::none, {},
            [](format::EsmBlob& b) { b.lockboxes[1].number = b.lockboxes[0].number; }, true);
        vm.policy.machine_key = vm.keys[0];
        expect_failure(vm.esm(), EsmFailure::esm_digests_malformed,
                       "the initrd (cpio member opt/ibm/pef/esmb.dtb)");
    }
}

TEST_CASE("esm ultravisor: an ordinary initramfs is just an initrd") {
    for (const char* first : {"init", "opt/ibm/other/file"}) {
        CAPTURE(first);
        std::vector<std::byte> cpio;
        newc_member(cpio, "opt", 040755, {});
        newc_member(cpio, first, 0100755, test::to_bytes("#!/bin/sh\n"));
        newc_member(cpio, "TRAILER!!!", 0, {});
        auto found = find_initrd_esm_blob(cpio, "initrd");
        REQUIRE(found.has_value());
        CHECK_FALSE(found->has_value());
    }
    // Not a cpio at all, or a broken one: no blob either.
    auto none = find_initrd_esm_blob(test::random_bytes(4096, 5), "initrd");
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());
    auto broken = esm_cpio(test::random_bytes(300, 6));
    broken.resize(200);
    auto cut = find_initrd_esm_blob(broken, "initrd");
    REQUIRE(cut.has_value());
    CHECK_FALSE(cut->has_value());
    // An archive not padded to 512 bytes: the initrd after it cannot be found.
    std::vector<std::byte> unpadded;
    newc_member(unpadded, "opt/ibm/pef/esmb.dtb", 0100644, test::random_bytes(40, 7));
    newc_member(unpadded, "TRAILER!!!", 0, {});
    auto bad = find_initrd_esm_blob(unpadded, "initrd");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message.find("not padded to a multiple of 512 bytes") != std::string::npos);
}
