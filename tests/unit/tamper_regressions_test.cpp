// What the tamper matrix (tests/tamper, svmkit issue 8) found, each pinned
// down on its own: header bytes and padding the reader used to accept, a
// manifest section that could sit anywhere, validation messages that did not
// say they were about the manifest, and a tampered stub that could crash
// `svmkit boot` by jumping out of guest RAM.
#include "format/image_layout.hpp"
#include "format/image_reader.hpp"
#include "format/image_writer.hpp"
#include "format/manifest_fdt.hpp"
#include "format/stub_image.hpp"
#include "guest/layout.h"
#include "platform/machine.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <elf.h>
#include <functional>
#include <sys/wait.h>
#include <unistd.h>

using namespace svmkit;

namespace {

const signer::PrivateKey& test_key() {
    static const signer::PrivateKey key = *signer::PrivateKey::generate(signer::KeyType::ed25519);
    return key;
}

// A signed image of the embedded stub (or `stub`) and small payloads.
std::string build(const test::TempDir& dir, const std::string& name,
                  std::optional<format::StubImage> stub = std::nullopt) {
    format::ImageBuildRequest req;
    req.arch = format::host_arch();
    req.stub = stub ? *stub : *format::embedded_stub(req.arch);
    req.output_path = dir.file(name);
    req.keys = {&test_key()};
    format::ComponentInput kernel;
    kernel.kind = format::ComponentKind::kernel;
    kernel.stored = format::PayloadSource::from_memory("kernel", test::random_bytes(70000, 1));
    kernel.kernel = format::KernelPlacement{0x200000, 70000, 0};
    format::ComponentInput cmdline;
    cmdline.kind = format::ComponentKind::cmdline;
    cmdline.stored = format::PayloadSource::from_memory("cmdline", test::to_bytes("console=hvc0"));
    req.payloads = {kernel, cmdline};
    auto built = format::build_image(req);
    REQUIRE_MESSAGE(built.has_value(), built.error().message);
    return req.output_path;
}

template <typename T>
T get(const std::vector<std::byte>& b, std::uint64_t at) {
    T v{};
    std::memcpy(&v, b.data() + at, sizeof v);
    return v;
}

template <typename T>
void set(std::vector<std::byte>& b, std::uint64_t at, const T& v) {
    std::memcpy(b.data() + at, &v, sizeof v);
}

std::uint64_t phdr_at(const std::vector<std::byte>& b, std::size_t i) {
    return get<Elf64_Ehdr>(b, 0).e_phoff + i * sizeof(Elf64_Phdr);
}

std::uint64_t shdr_at(const std::vector<std::byte>& b, std::size_t i) {
    return get<Elf64_Ehdr>(b, 0).e_shoff + i * sizeof(Elf64_Shdr);
}

} // namespace

TEST_CASE("tamper regressions: the reader accepts only the canonical ELF container") {
    test::TempDir dir("tamper");
    const std::string path = build(dir, "img");
    const std::vector<std::byte> pristine = test::read_bytes(path);
    REQUIRE(format::open_image(path).has_value());
    const auto shstrtab =
        get<Elf64_Shdr>(pristine, shdr_at(pristine, get<Elf64_Ehdr>(pristine, 0).e_shstrndx));

    struct Mutation {
        std::string what;
        std::function<void(std::vector<std::byte>&)> apply;
        const char* message;
    };
    const Mutation mutations[] = {
        {"OS ABI", [](auto& b) { b[EI_OSABI] = std::byte{3}; }, "ELF header field e_ident"},
        {"ABI version", [](auto& b) { b[EI_ABIVERSION] = std::byte{1}; },
         "ELF header field e_ident"},
        {"e_ident padding", [](auto& b) { b[EI_PAD + 3] = std::byte{0x20}; },
         "ELF header field e_ident"},
        {"e_flags", [](auto& b) { set<Elf64_Word>(b, offsetof(Elf64_Ehdr, e_flags), 1); },
         "ELF header field e_flags"},
        {"e_phnum with zero (PT_NULL) entries after the table",
         [](auto& b) {
             auto n = get<Elf64_Half>(b, offsetof(Elf64_Ehdr, e_phnum));
             set<Elf64_Half>(b, offsetof(Elf64_Ehdr, e_phnum), static_cast<Elf64_Half>(n + 8));
         },
         "ELF header field e_phnum"},
        {"p_align",
         [](auto& b) {
             set<Elf64_Xword>(b, phdr_at(b, 1) + offsetof(Elf64_Phdr, p_align), 0x1000);
         },
         "program header 1 field p_align"},
        {"p_flags without PF_R",
         [](auto& b) { set<Elf64_Word>(b, phdr_at(b, 2) + offsetof(Elf64_Phdr, p_flags), 0); },
         "program header 2 field p_flags"},
        {"null section header",
         [](auto& b) { set<Elf64_Addr>(b, shdr_at(b, 0) + offsetof(Elf64_Shdr, sh_addr), 1); },
         "section header 0 (null) field sh_addr"},
        {"sh_entsize",
         [](auto& b) { set<Elf64_Xword>(b, shdr_at(b, 1) + offsetof(Elf64_Shdr, sh_entsize), 8); },
         "section header 1 (.text) field sh_entsize"},
        {"sh_link",
         [](auto& b) { set<Elf64_Word>(b, shdr_at(b, 3) + offsetof(Elf64_Shdr, sh_link), 2); },
         "field sh_link"},
        {"the name table's own name",
         [&](auto& b) { b[shstrtab.sh_offset + shstrtab.sh_size - 2] = std::byte{'X'}; },
         "the section name table"},
        {"padding after the program headers", [](auto& b) { b[0x1000] = std::byte{1}; },
         "non-zero padding at offset 0x1000"},
        {"padding after the stub's code",
         [](auto& b) { b[format::kFirstLoadOffset + 0xffff] = std::byte{0x90}; },
         "non-zero padding at offset 0x1ffff"},
        {"a byte appended", [](auto& b) { b.push_back(std::byte{0}); },
         "bytes after the section headers"},
    };
    for (const Mutation& m : mutations) {
        CAPTURE(m.what);
        std::vector<std::byte> b = pristine;
        m.apply(b);
        const std::string mutated = dir.file("mutated");
        test::write_bytes(mutated, b);
        test::check_error(format::open_image(mutated), ExitCode::malformed, m.message);
    }
}

TEST_CASE("tamper regressions: the manifest section lies at the stub's end, up to the first "
          "payload") {
    test::TempDir dir("tamper");
    const std::string path = build(dir, "img");
    std::vector<std::byte> b = test::read_bytes(path);
    const format::SecureImage img = *format::open_image(path);
    // Shrink the manifest section to half its capacity (segment and section
    // agree; the tree still fits; the rest becomes zero padding).
    const std::uint64_t half = img.manifest_section.size / 2;
    REQUIRE(half >= img.manifest_blob.size());
    const auto eh = get<Elf64_Ehdr>(b, 0);
    for (std::size_t i = 0; i < eh.e_phnum; ++i)
        if (get<Elf64_Phdr>(b, phdr_at(b, i)).p_paddr == img.manifest_section.address) {
            set<Elf64_Xword>(b, phdr_at(b, i) + offsetof(Elf64_Phdr, p_filesz), half);
            set<Elf64_Xword>(b, phdr_at(b, i) + offsetof(Elf64_Phdr, p_memsz), half);
        }
    for (std::size_t i = 0; i < eh.e_shnum; ++i)
        if (get<Elf64_Shdr>(b, shdr_at(b, i)).sh_offset == img.manifest_section.offset)
            set<Elf64_Xword>(b, shdr_at(b, i) + offsetof(Elf64_Shdr, sh_size), half);
    const std::string mutated = dir.file("mutated");
    test::write_bytes(mutated, b);
    test::check_error(format::open_image(mutated), ExitCode::malformed,
                      "is not between the stub's end");
}

TEST_CASE("tamper regressions: __stub_end must be the first 64 KiB boundary after the stub") {
    // The embedded stub with its __stub_end symbol moved one page further.
    const auto elf = format::embedded_stub_elf(format::host_arch());
    std::vector<std::byte> b(elf.begin(), elf.end());
    REQUIRE(format::parse_stub_elf(b, format::host_arch(), "stub").has_value());
    const auto eh = get<Elf64_Ehdr>(b, 0);
    bool moved = false;
    for (std::size_t i = 0; i < eh.e_shnum; ++i) {
        const auto sh = get<Elf64_Shdr>(b, eh.e_shoff + i * sizeof(Elf64_Shdr));
        if (sh.sh_type != SHT_SYMTAB)
            continue;
        const auto strtab = get<Elf64_Shdr>(b, eh.e_shoff + sh.sh_link * sizeof(Elf64_Shdr));
        for (std::uint64_t at = sh.sh_offset; at < sh.sh_offset + sh.sh_size;
             at += sizeof(Elf64_Sym)) {
            auto sym = get<Elf64_Sym>(b, at);
            const char* name =
                reinterpret_cast<const char*>(b.data() + strtab.sh_offset + sym.st_name);
            if (std::strcmp(name, "__stub_end") == 0) {
                sym.st_value += SVMKIT_PAGE_SIZE;
                set(b, at, sym);
                moved = true;
            }
        }
    }
    REQUIRE(moved);
    test::check_error(format::parse_stub_elf(b, format::host_arch(), "stub"), ExitCode::malformed,
                      "__stub_end");
}

TEST_CASE("tamper regressions: manifest validation errors say they are about the manifest") {
    test::TempDir dir("tamper");
    const format::SecureImage img = *format::open_image(build(dir, "img"));
    format::Manifest m = img.manifest;
    m.find(format::ComponentKind::cmdline)->address =
        m.find(format::ComponentKind::kernel)->address;
    test::check_error(format::decode_manifest_fdt(format::encode_manifest_fdt(m), "img"),
                      ExitCode::malformed, "img: manifest: components cmdline and kernel overlap");
}

namespace {

struct ChildBoot {
    bool survived = false; // the booting process exited normally
    std::string answer;    // "<outcome>: <message>"
};

// Boots an image whose stub is `code` (x86-64 machine code at the image
// base) in a child process: a stub that breaks the platform kills only it.
ChildBoot boot_stub(const std::vector<std::uint8_t>& code) {
    test::TempDir dir("tamper");
    format::StubImage stub;
    stub.arch = format::Arch::x86_64;
    stub.base = SVMKIT_IMAGE_BASE;
    for (std::uint8_t c : code)
        stub.text.push_back(std::byte{c});
    stub.end = SVMKIT_IMAGE_BASE + SVMKIT_PAGE_SIZE;
    const format::SecureImage img = *format::open_image(build(dir, "stub-test", stub));
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(pipefd[0]);
        platform::MachineConfig config;
        config.memory_size = 128ull << 20;
        config.timeout = std::chrono::seconds(30);
        std::string answer = "setup failed";
        auto machine = platform::Machine::create(std::move(config));
        if (machine && (*machine)->load(img) && (*machine)->run())
            answer = std::string(platform::boot_outcome_name((*machine)->report().outcome)) + ": " +
                     (*machine)->report().message;
        [[maybe_unused]] auto n = ::write(pipefd[1], answer.data(), answer.size());
        ::_exit(0);
    }
    ::close(pipefd[1]);
    ChildBoot out;
    char buf[512];
    for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;)
        out.answer.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    out.survived = WIFEXITED(status);
    return out;
}

} // namespace

TEST_CASE("tamper regressions: a stub that jumps out of guest RAM faults, svmkit boot survives") {
    // movabs $0x4000000, %rax; jmp *%rax: a guest-physical address used as a
    // pointer, far outside guest RAM's virtual range.
    const ChildBoot b =
        boot_stub({0x48, 0xb8, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0xff, 0xe0});
    CHECK_MESSAGE(b.survived, "the booting process died");
    CHECK_MESSAGE(b.answer.starts_with("faulted: guest code faulted: SIGSEGV"), b.answer);
    CHECK_MESSAGE(test::contains(b.answer, "it jumped to 0x4000000, outside guest RAM"), b.answer);
}

TEST_CASE("tamper regressions: guest code starts with no host value in its registers") {
    // rax = rbx | r8 | ... | r15; load from rax; ret. Only a null pointer
    // faults without an address to report; a host pointer left in any of
    // these registers would be read (or written, by a tampered stub).
    const ChildBoot b = boot_stub({0x48, 0x89, 0xd8, 0x4c, 0x09, 0xc0, 0x4c, 0x09, 0xc8, 0x4c, 0x09,
                                   0xd0, 0x4c, 0x09, 0xd8, 0x4c, 0x09, 0xe0, 0x4c, 0x09, 0xe8, 0x4c,
                                   0x09, 0xf0, 0x4c, 0x09, 0xf8, 0x48, 0x8b, 0x00, 0xc3});
    CHECK_MESSAGE(b.survived, "the booting process died");
    CHECK_MESSAGE(b.answer.starts_with("faulted: guest code faulted: SIGSEGV"), b.answer);
    CHECK_MESSAGE(!test::contains(b.answer, "accessing"), b.answer);
}
