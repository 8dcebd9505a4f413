// The simulated ultravisor's UV_ESM: secure first, then verify the image in
// guest memory against the platform policy, with one distinct failure per cause.
#include "platform/guest_memory.hpp"
#include "platform/ultravisor.hpp"

#include "format/image_reader.hpp"
#include "format/image_writer.hpp"
#include "format/stub_image.hpp"
#include "platform/image_loader.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <libfdt.h>

using namespace svmkit;
using namespace svmkit::platform;

namespace {

constexpr std::uint64_t kMemory = 128ull << 20;
constexpr std::uint64_t kKbase = 0x4000000;
constexpr std::uint64_t kFdtAt = 0x1000000;
const std::string kCmdline = "console=hvc0 svm=on";

std::vector<std::byte> bytes_of(std::string_view s) {
    auto b = std::as_bytes(std::span(s.data(), s.size()));
    return {b.begin(), b.end()};
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
    return v;
}

// A device tree with /chosen as the stub would make it.
std::vector<std::byte> chosen_fdt(const std::string& bootargs,
                                  std::optional<std::uint64_t> blob_start, std::uint64_t blob_end) {
    std::vector<std::byte> buf(4096);
    void* f = buf.data();
    REQUIRE(fdt_create(f, 4096) == 0);
    REQUIRE(fdt_finish_reservemap(f) == 0);
    REQUIRE(fdt_begin_node(f, "") == 0);
    REQUIRE(fdt_begin_node(f, "chosen") == 0);
    REQUIRE(fdt_property(f, "bootargs", bootargs.c_str(), static_cast<int>(bootargs.size() + 1)) ==
            0);
    if (blob_start) {
        REQUIRE(fdt_property_u64(f, "linux,esm-blob-start", *blob_start) == 0);
        REQUIRE(fdt_property_u64(f, "linux,esm-blob-end", blob_end) == 0);
    }
    REQUIRE(fdt_end_node(f) == 0);
    REQUIRE(fdt_end_node(f) == 0);
    REQUIRE(fdt_finish(f) == 0);
    buf.resize(fdt_totalsize(f));
    return buf;
}

signer::PublicKey copy_of(const signer::PublicKey& k) {
    return *signer::PublicKey::from_der(k.spki_der(), "test key");
}

struct Machine {
    test::TempDir dir{"uv"};
    signer::PrivateKey key = *signer::PrivateKey::generate(signer::KeyType::ed25519);
    signer::PrivateKey other = *signer::PrivateKey::generate(signer::KeyType::ecdsa_p256);
    format::SecureImage image;
    std::optional<GuestMemory> memory;
    PlacedImage placed;
    EsmPolicy policy;

    explicit Machine(std::uint64_t security_version = 3) {
        format::ImageBuildRequest req;
        req.arch = format::host_arch();
        req.stub = *format::embedded_stub(req.arch);
        req.security_version = security_version;
        req.output_path = dir.file("img");
        req.keys = {&key};
        format::ComponentInput kernel;
        kernel.kind = format::ComponentKind::kernel;
        kernel.stored = format::PayloadSource::from_memory("kernel", pattern(300000, 1));
        kernel.kernel = format::KernelPlacement{0x200000, 300000, 0};
        format::ComponentInput initrd;
        initrd.kind = format::ComponentKind::initrd;
        initrd.stored = format::PayloadSource::from_memory("initrd", pattern(70000, 2));
        format::ComponentInput cmdline;
        cmdline.kind = format::ComponentKind::cmdline;
        cmdline.stored = format::PayloadSource::from_memory("cmdline", bytes_of(kCmdline));
        format::ComponentInput dtb;
        dtb.kind = format::ComponentKind::dtb;
        dtb.stored = format::PayloadSource::from_memory("dtb", chosen_fdt("", std::nullopt, 0));
        req.payloads = {kernel, initrd, cmdline, dtb};
        REQUIRE(format::build_image(req).has_value());
        image = *format::open_image(req.output_path);
        auto mem = GuestMemory::create(kMemory);
        REQUIRE_MESSAGE(mem.has_value(), mem.error().message);
        memory.emplace(std::move(*mem));
        placed = *place_image(*memory, image, kKbase);
        policy.verify.trusted_keys.push_back(copy_of(key.public_key()));
        set_fdt(kCmdline);
    }

    void set_fdt(const std::string& bootargs, bool with_blob = true) {
        auto fdt =
            chosen_fdt(bootargs, with_blob ? std::optional(placed.manifest_start) : std::nullopt,
                       placed.manifest_end);
        REQUIRE(memory->write(kFdtAt, fdt).has_value());
    }

    std::uint64_t component_at(format::ComponentKind k) const {
        const format::Component* c = image.manifest.find(k);
        return kKbase + (c->address - image.manifest.image_base);
    }

    void flip(std::uint64_t gpa) {
        auto b = memory->range(gpa, 1);
        (*b)[0] ^= std::byte{0x40};
    }

    EsmResult esm(std::uint64_t kbase = kKbase, std::uint64_t fdt = kFdtAt) {
        auto r = enter_secure_mode(*memory, kbase, fdt, policy);
        REQUIRE_MESSAGE(r.has_value(), r.error().message);
        return std::move(*r);
    }
};

void expect_failure(const EsmResult& r, EsmFailure want, std::string_view text) {
    CHECK_MESSAGE(r.failure == want, esm_failure_name(r.failure), ": ", r.message);
    CHECK_MESSAGE(r.message.find(text) != std::string::npos, r.message);
    CHECK(esm_failure_code(r.failure) < 0);
}

} // namespace

TEST_CASE("UV_ESM: a correctly signed, unmodified image enters secure mode") {
    Machine vm;
    EsmResult r = vm.esm();
    REQUIRE_MESSAGE(r.ok(), r.message);
    CHECK(r.pages_secured == kMemory / kGuestPageSize);
    CHECK(vm.memory->count(PageState::secure) == vm.memory->page_count());
    CHECK(r.resume_pc == kKbase);
    CHECK(r.digests.size() == vm.image.manifest.components.size());
    for (const auto& d : r.digests)
        CHECK(d.ok);
    REQUIRE(r.trusted_signers.size() == 1);
    CHECK(r.trusted_signers[0] == vm.key.public_key().key_id());
    // A second ESM is refused.
    EsmResult again = vm.esm();
    expect_failure(again, EsmFailure::already_secure, "already secure");
}

TEST_CASE("UV_ESM: the image may be loaded at another kbase") {
    Machine vm;
    // Move the whole image 16 MiB up; the FDT points at the moved blob.
    const std::uint64_t moved = kKbase + (16u << 20);
    vm.placed = *place_image(*vm.memory, vm.image, moved);
    vm.set_fdt(kCmdline);
    EsmResult r = vm.esm(moved);
    CHECK_MESSAGE(r.ok(), r.message);
    CHECK(r.resume_pc == moved);
}

TEST_CASE("UV_ESM: each failure cause is reported distinctly") {
    SUBCASE("no FDT") {
        Machine vm;
        expect_failure(vm.esm(kKbase, 0x2000000), EsmFailure::bad_fdt, "no valid device tree");
    }
    SUBCASE("blob missing") {
        Machine vm;
        vm.set_fdt(kCmdline, false);
        expect_failure(vm.esm(), EsmFailure::blob_missing, "esm-blob");
    }
    SUBCASE("blob malformed") {
        Machine vm;
        vm.flip(vm.placed.manifest_start + 2); // the FDT magic
        expect_failure(vm.esm(), EsmFailure::blob_malformed, "not a device tree");
    }
    SUBCASE("no trusted signature") {
        Machine vm;
        vm.policy.verify.trusted_keys.clear();
        vm.policy.verify.trusted_keys.push_back(copy_of(vm.other.public_key()));
        expect_failure(vm.esm(), EsmFailure::no_trusted_signature, "no signature by a trusted key");
    }
    SUBCASE("revoked key") {
        Machine vm;
        vm.policy.verify.revoked_keys = {vm.key.public_key().key_id()};
        expect_failure(vm.esm(), EsmFailure::revoked_key, "revoked");
    }
    SUBCASE("rollback") {
        Machine vm;
        vm.policy.verify.min_security_version = 4;
        expect_failure(vm.esm(), EsmFailure::rollback, "below the minimum 4");
    }
    SUBCASE("too few signatures") {
        Machine vm;
        vm.policy.verify.trusted_keys.push_back(copy_of(vm.other.public_key()));
        vm.policy.verify.required_signatures = 2;
        expect_failure(vm.esm(), EsmFailure::too_few_signatures, "requires 2");
    }
    SUBCASE("bad signature: the manifest changed in guest memory") {
        Machine vm;
        // The security-version value sits in the blob; change the signed content
        // without breaking the device tree: flip a byte of the last signature value.
        const auto& m = vm.image.manifest_blob;
        const auto& sig = vm.image.manifest.signatures[0].value;
        auto it = std::search(m.begin(), m.end(), sig.begin(), sig.end());
        REQUIRE(it != m.end());
        vm.flip(vm.placed.manifest_start + static_cast<std::uint64_t>(it - m.begin()) + 5);
        expect_failure(vm.esm(), EsmFailure::bad_signature, "does not verify");
    }
    SUBCASE("stub, kernel, initrd, command line and dtb tampered before ESM") {
        const std::pair<format::ComponentKind, EsmFailure> cases[] = {
            {format::ComponentKind::stub_text, EsmFailure::stub_digest_mismatch},
            {format::ComponentKind::stub_rodata, EsmFailure::stub_digest_mismatch},
            {format::ComponentKind::kernel, EsmFailure::kernel_digest_mismatch},
            {format::ComponentKind::initrd, EsmFailure::initrd_digest_mismatch},
            {format::ComponentKind::cmdline, EsmFailure::cmdline_digest_mismatch},
            {format::ComponentKind::dtb, EsmFailure::dtb_digest_mismatch},
        };
        for (const auto& [kind, failure] : cases) {
            CAPTURE(format::component_name(kind));
            Machine vm;
            vm.flip(vm.component_at(kind) + 1);
            expect_failure(vm.esm(), failure, "digest mismatch");
        }
    }
    SUBCASE("bootargs differ from the signed command line") {
        Machine vm;
        vm.set_fdt("console=hvc0 svm=on init=/bin/sh");
        expect_failure(vm.esm(), EsmFailure::bootargs_mismatch, "not the signed command line");
    }
    SUBCASE("image placed past the end of guest RAM") {
        Machine vm;
        expect_failure(vm.esm(kMemory), EsmFailure::image_out_of_range, "outside guest RAM");
    }
}

TEST_CASE("UV_ESM: memory is secured before anything is checked") {
    Machine vm;
    vm.set_fdt(kCmdline, false); // fails, but only after securing
    EsmResult r = vm.esm();
    CHECK(r.failure == EsmFailure::blob_missing);
    CHECK(r.pages_secured == kMemory / kGuestPageSize);
    CHECK(vm.memory->count(PageState::normal) == 0);
}
