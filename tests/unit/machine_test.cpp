// The simulated machine booting real images: the embedded x86-64 stub and the
// sample guest kernel (samples/kernel), end to end inside this process.
#include "platform/machine.hpp"

#include "format/image_reader.hpp"
#include "guest/layout.h"
#include "test_support.hpp"
#include "wrapper/commands.hpp"

#include <doctest/doctest.h>
#include <libfdt.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sched.h>
#include <unistd.h>

using namespace svmkit;
using namespace svmkit::platform;

namespace {

constexpr std::uint64_t kMemory = 256ull << 20;
const std::string kCmdline = "console=hvc0 svm=on svmkit.swiotlb=8M";

// The sample kernel is built beside this test binary (build/tests/..).
std::string sample_kernel() {
    const auto exe = std::filesystem::read_symlink("/proc/self/exe");
    return (exe.parent_path().parent_path() / "samples/kernel/sample-kernel.elf").string();
}

std::uint64_t be64(const void* p) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

std::uint32_t be32(const void* p) {
    std::uint32_t v = 0;
    std::memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}

struct Booted {
    std::unique_ptr<Machine> machine;
    format::SecureImage image;
    const BootReport& report() const { return machine->report(); }
};

struct Lab {
    test::TempDir dir{"boot"};
    std::string initrd = dir.file("initrd");
    std::vector<std::byte> initrd_bytes = test::random_bytes(300000, 3);

    Lab() {
        REQUIRE_MESSAGE(std::filesystem::exists(sample_kernel()), sample_kernel());
        test::write_bytes(initrd, initrd_bytes);
        for (const char* name : {"k", "other"}) {
            auto r = cli::run_keygen({"ed25519", dir.file(std::string(name) + ".key"),
                                      dir.file(std::string(name) + ".pub")});
            REQUIRE(r.has_value());
        }
    }

    std::string build(const std::string& name, const std::string& compress,
                      const std::string& cmdline = kCmdline) {
        cli::BuildOptions b;
        b.kernel = sample_kernel();
        b.initrd = initrd;
        b.cmdline = cmdline;
        b.compress = compress;
        b.key.keys = {dir.file("k.key")};
        b.output = dir.file(name);
        auto r = cli::run_build(b);
        REQUIRE_MESSAGE(r.has_value(), r.error().message);
        return b.output;
    }

    Booted boot(const std::string& path, const std::string& trusted = "k.pub",
                unsigned virtio_nodes = 0) {
        Booted b;
        auto image = format::open_image(path);
        REQUIRE_MESSAGE(image.has_value(), image.error().message);
        b.image = std::move(*image);
        MachineConfig config;
        config.memory_size = kMemory;
        config.virtio_mmio_nodes = virtio_nodes;
        config.timeout = std::chrono::seconds(60);
        config.hypervisor_path = SVMKIT_HYPERVISOR_PATH;
        auto key = signer::PublicKey::load(dir.file(trusted));
        REQUIRE(key.has_value());
        config.policy.verify.trusted_keys.push_back(std::move(*key));
        auto m = Machine::create(std::move(config));
        REQUIRE_MESSAGE(m.has_value(), m.error().message);
        b.machine = std::move(*m);
        auto loaded = b.machine->load(b.image);
        REQUIRE_MESSAGE(loaded.has_value(), loaded.error().message);
        auto ran = b.machine->run();
        REQUIRE_MESSAGE(ran.has_value(), ran.error().message);
        return b;
    }
};

// The image's loaded range as firmware placed it: every section's file bytes
// at its address, zero between them.
std::vector<std::byte> expected_image(const format::SecureImage& img, const PlacedImage& placed) {
    std::vector<std::byte> out(placed.end - placed.kbase);
    std::vector<format::ImageSection> sections = img.sections;
    sections.push_back(img.manifest_section);
    for (const format::ImageSection& s : sections) {
        std::vector<std::byte> bytes(s.size);
        REQUIRE(img.file->read_at(s.offset, bytes).has_value());
        std::copy(bytes.begin(), bytes.end(),
                  out.begin() + static_cast<std::ptrdiff_t>(s.address - SVMKIT_IMAGE_BASE));
    }
    return out;
}

} // namespace

TEST_CASE("machine: the real stub boots the sample kernel secure") {
    Lab lab;
    for (const char* compress : {"gzip", "none"}) {
        CAPTURE(compress);
        const std::string path = lab.build(std::string("img-") + compress, compress);
        Booted b = lab.boot(path, "k.pub", 3);
        const BootReport& r = b.report();
        INFO(r.console);
        REQUIRE_MESSAGE(r.outcome == BootOutcome::exited, r.message);
        CHECK(r.exit_status == 0u);
        CHECK(test::contains(r.console, "svmkit sample kernel: hello from the guest kernel"));
        CHECK(test::contains(r.console, "svmkit sample kernel: running secure (MSR[S] set)"));
        CHECK(test::contains(r.console, "bootargs \"" + kCmdline + "\""));
        CHECK(test::contains(r.console, "virtio=3 canary=stored"));
        CHECK_FALSE(test::contains(r.console, "FAILED"));

        // ESM: everything secured, every component hashed and matching.
        REQUIRE(r.esm.has_value());
        CHECK(r.esm->ok());
        CHECK(r.esm->pages_secured == kMemory / kGuestPageSize);
        CHECK(r.esm->digests.size() == b.image.manifest.components.size());
        for (const DigestCheck& d : r.esm->digests)
            CHECK(d.ok);
        CHECK(r.esm->trusted_signers.size() == 1);

        // The kernel: unpacked by the stub to its load address and entered there.
        REQUIRE(r.kernel.has_value());
        CHECK(r.kernel->load_address == 0x200000u);
        CHECK(r.kernel->inflated == (std::string(compress) == "gzip"));
        REQUIRE(r.kernel_entry.has_value());
        CHECK(r.kernel_entry->entry == 0x200000u);

        // The bounce pool: svmkit.swiotlb=8M from the signed command line, shared.
        REQUIRE(r.shares.size() == 1);
        CHECK(r.shares[0].share);
        CHECK(r.shares[0].ret == 0);
        CHECK(r.shares[0].pages == (8u << 20) / kGuestPageSize);
        CHECK(r.pages_shared_at_end == r.shares[0].pages);
        const std::uint64_t pool_base = r.shares[0].pfn * kGuestPageSize;
        for (std::uint64_t p = 0; p < r.shares[0].pages; ++p)
            CHECK(b.machine->memory().state(r.shares[0].pfn + p) == PageState::shared);

        // The FDT the kernel got.
        auto header = b.machine->memory().range(r.kernel_entry->fdt, sizeof(fdt_header));
        REQUIRE(header.has_value());
        auto whole = b.machine->memory().range(r.kernel_entry->fdt, fdt_totalsize(header->data()));
        REQUIRE(whole.has_value());
        const void* fdt = whole->data();
        REQUIRE(fdt_check_full(fdt, whole->size()) == 0);
        const int chosen = fdt_path_offset(fdt, "/chosen");
        REQUIRE(chosen >= 0);
        CHECK(std::string(static_cast<const char*>(
                  fdt_getprop(fdt, chosen, "bootargs", nullptr))) == kCmdline);
        CHECK(fdt_getprop(fdt, chosen, "svmkit,virtio-require-access-platform", nullptr) !=
              nullptr);
        const std::uint64_t initrd_start =
            be64(fdt_getprop(fdt, chosen, "linux,initrd-start", nullptr));
        const std::uint64_t initrd_end =
            be64(fdt_getprop(fdt, chosen, "linux,initrd-end", nullptr));
        REQUIRE(r.initrd.has_value());
        CHECK(r.initrd->first == initrd_start);
        CHECK(initrd_end - initrd_start == lab.initrd_bytes.size());
        auto initrd = b.machine->memory().range(initrd_start, initrd_end - initrd_start);
        REQUIRE(initrd.has_value());
        CHECK(std::equal(initrd->begin(), initrd->end(), lab.initrd_bytes.begin()));
        CHECK(be64(fdt_getprop(fdt, chosen, "linux,esm-blob-start", nullptr)) ==
              r.placed.manifest_start);

        const int pool = fdt_node_offset_by_compatible(fdt, -1, "restricted-dma-pool");
        REQUIRE(pool >= 0);
        CHECK(fdt_parent_offset(fdt, pool) == fdt_path_offset(fdt, "/reserved-memory"));
        int len = 0;
        const auto* reg = static_cast<const std::byte*>(fdt_getprop(fdt, pool, "reg", &len));
        REQUIRE(len == 16);
        CHECK(be64(reg) == pool_base);
        CHECK(be64(reg + 8) == 8u << 20);
        const std::uint32_t phandle = fdt_get_phandle(fdt, pool);
        CHECK(phandle != 0);
        int devices = 0;
        for (int dev = fdt_node_offset_by_compatible(fdt, -1, "virtio,mmio"); dev >= 0;
             dev = fdt_node_offset_by_compatible(fdt, dev, "virtio,mmio")) {
            const void* region = fdt_getprop(fdt, dev, "memory-region", &len);
            REQUIRE(region != nullptr);
            CHECK(len == 4);
            CHECK(be32(region) == phandle);
            ++devices;
        }
        CHECK(devices == 3);

        // The stub wrote nothing inside the image, padding included.
        auto in_memory = b.machine->memory().range(r.placed.kbase, r.placed.end - r.placed.kbase);
        REQUIRE(in_memory.has_value());
        const auto want = expected_image(b.image, r.placed);
        CHECK(std::equal(in_memory->begin(), in_memory->end(), want.begin(), want.end()));
    }
}

TEST_CASE("machine: the kernel's canary is in secure memory only") {
    Lab lab;
    Booted b = lab.boot(lab.build("img", "gzip"));
    REQUIRE_MESSAGE(b.report().outcome == BootOutcome::exited, b.report().message);
    // The sample kernel's canary: SHA-256 of its seed text (samples/kernel/kernel.cpp).
    const std::string seed = "svmkit sample kernel secret canary";
    const auto canary = signer::digest(signer::DigestAlgorithm::sha256, test::to_bytes(seed));
    const auto at = b.report().console.find("canary=stored at 0x");
    REQUIRE(at != std::string::npos);
    const std::uint64_t gpa = std::stoull(b.report().console.substr(at + 17), nullptr, 16);
    auto bytes = b.machine->memory().range(gpa, canary.size());
    REQUIRE(bytes.has_value());
    CHECK(std::equal(bytes->begin(), bytes->end(), canary.begin()));
    CHECK(b.machine->memory().state(gpa / kGuestPageSize) == PageState::secure);
    // Nowhere in what a hypervisor process could map.
    std::vector<std::byte> chunk(1u << 20);
    const int fd = b.machine->memory().hypervisor_fd();
    for (std::uint64_t off = 0; off < kMemory; off += chunk.size()) {
        REQUIRE(::pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) ==
                static_cast<ssize_t>(chunk.size()));
        CHECK(std::search(chunk.begin(), chunk.end(), canary.begin(), canary.end()) == chunk.end());
    }
}

TEST_CASE("machine: a refused image never reaches the kernel") {
    Lab lab;
    Booted b = lab.boot(lab.build("img", "gzip"), "other.pub");
    const BootReport& r = b.report();
    CHECK(r.outcome == BootOutcome::refused);
    REQUIRE(r.esm.has_value());
    CHECK(r.esm->failure == EsmFailure::no_trusted_signature);
    CHECK(r.esm_return_code < 0);
    CHECK(test::contains(r.message, "no-trusted-signature"));
    CHECK(test::contains(r.console, "UV_ESM failed: -4 (U_PARAMETER)"));
    CHECK_FALSE(test::contains(r.console, "svmkit sample kernel"));
    CHECK_FALSE(r.kernel_entry.has_value());
    CHECK(r.shares.empty());
}

TEST_CASE("machine: a malformed svmkit.swiotlb= stops the stub after ESM") {
    Lab lab;
    Booted b = lab.boot(lab.build("img", "none", "console=hvc0 svmkit.swiotlb=lots"));
    const BootReport& r = b.report();
    CHECK(r.outcome == BootOutcome::terminated);
    CHECK(test::contains(r.console, "svmkit.swiotlb= on the command line is not a size"));
    CHECK_FALSE(test::contains(r.console, "svmkit sample kernel"));
}

// The pages of the one share the stub made (the bounce pool).
std::uint64_t pool_pages(const BootReport& r) {
    REQUIRE(r.shares.size() == 1);
    CHECK(r.shares[0].share);
    return r.shares[0].pages;
}

TEST_CASE("machine: Linux's swiotlb= is left to Linux, the pool is svmkit.swiotlb= or the "
          "manifest's") {
    Lab lab;
    const std::uint64_t manifest_pages = format::kDefaultSwiotlbSize / kGuestPageSize;
    SUBCASE("swiotlb=force beside svmkit.swiotlb=2M") {
        const std::string cmdline = "console=hvc0 swiotlb=force svmkit.swiotlb=2M";
        Booted b = lab.boot(lab.build("img", "none", cmdline));
        const BootReport& r = b.report();
        CHECK(r.outcome == BootOutcome::exited);
        CHECK(test::contains(r.console, "bootargs \"" + cmdline + "\""));
        CHECK(pool_pages(r) == (2u << 20) / kGuestPageSize);
        CHECK_FALSE(test::contains(r.console, "note: swiotlb="));
    }
    SUBCASE("swiotlb=65536,4 alone: the manifest's size, no note") {
        Booted b = lab.boot(lab.build("img", "none", "console=hvc0 swiotlb=65536,4"));
        const BootReport& r = b.report();
        CHECK(r.outcome == BootOutcome::exited);
        CHECK(test::contains(r.console, "bootargs \"console=hvc0 swiotlb=65536,4\""));
        CHECK(pool_pages(r) == manifest_pages);
        CHECK_FALSE(test::contains(r.console, "note: swiotlb="));
    }
    SUBCASE("the old spelling swiotlb=8M: the manifest's size, and a note why") {
        Booted b = lab.boot(lab.build("img", "none", "console=hvc0 svm=on swiotlb=8M"));
        const BootReport& r = b.report();
        CHECK(r.outcome == BootOutcome::exited);
        CHECK(pool_pages(r) == manifest_pages);
        CHECK(test::contains(r.console, "svmkit stub: note: swiotlb=8M is Linux's parameter"));
    }
}

TEST_CASE("machine: namespace_names names the vCPU's namespaces in a fixed order") {
    CHECK(namespace_names(0).empty());
    const auto all = namespace_names(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS |
                                     CLONE_NEWIPC | CLONE_NEWUTS);
    CHECK(std::vector<std::string_view>(all.begin(), all.end()) ==
          std::vector<std::string_view>{"user", "pid", "net", "mount", "ipc", "uts"});
    const auto root = namespace_names(CLONE_NEWUTS | CLONE_NEWPID);
    CHECK(std::vector<std::string_view>(root.begin(), root.end()) ==
          std::vector<std::string_view>{"pid", "uts"});
    // Flags that are no namespace of the sandbox's name nothing.
    CHECK(namespace_names(CLONE_VM | CLONE_FILES).empty());
}
