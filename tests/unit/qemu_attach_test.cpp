// The pieces of the ultravisor attached to QEMU that need no QEMU: register
// numbers from a target description, the mfmsr decoder, the guest RAM file
// shared with QEMU, the private directory, the first stage's initrd and the
// QEMU command line (platform/gdbstub/registers.hpp, platform/qemu/).
#include "platform/gdbstub/registers.hpp"
#include "platform/qemu/attached_ultravisor.hpp"
#include "platform/qemu/first_stage.hpp"
#include "platform/qemu/private_dir.hpp"
#include "platform/qemu/qemu_boot.hpp"
#include "platform/qemu/shared_ram.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace svmkit;
using namespace svmkit::platform;

namespace {

// The shape of QEMU 7.2's ppc64 description, cut down: the core feature
// numbers r0..r31 from 0 and pc from 64, the FPU's f0 is 71, the SPR
// feature has no numbers (and repeats lr).
const char* kCore = R"(<feature name="org.gnu.gdb.power.core">
<reg name="r0" bitsize="64" type="uint64"/><reg name="r1" bitsize="64"/>
<reg name="r2" bitsize="64"/><reg name="r3" bitsize="64"/>
<reg name="pc" bitsize="64" type="code_ptr" regnum="64"/>
<reg name="msr" bitsize="64"/><reg name="lr" bitsize="64"/></feature>)";
const char* kFpu = R"(<feature name="org.gnu.gdb.power.fpu">
<reg name="f0" bitsize="64" type="ieee_double" regnum="71"/><reg name="f1" bitsize="64"/>
<reg name="fpscr" bitsize="32" group="float"/></feature>)";
const char* kSpr = R"(<feature name="org.qemu.power.spr">
<reg name="xer" bitsize="64" group="spr"/><reg name="lr" bitsize="64" group="spr"/>
<reg name="srr0" bitsize="64" group="spr"/><reg name="srr1" bitsize="64" group="spr"/>
</feature>)";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

} // namespace

TEST_CASE("gdbstub registers: numbered in include order, regnum restarts the count") {
    gdb::RegisterMap map;
    REQUIRE(map.add_feature("power64-core.xml", kCore));
    REQUIRE(map.add_feature("power-fpu.xml", kFpu));
    REQUIRE(map.add_feature("power-spr.xml", kSpr));
    CHECK(map.number("r3") == 3u);
    CHECK(map.number("pc") == 64u);
    CHECK(map.number("msr") == 65u);
    CHECK(map.number("lr") == 66u); // the core's, not the SPR feature's repeat
    CHECK(map.number("f1") == 72u);
    CHECK(map.number("fpscr") == 73u);
    CHECK(map.number("xer") == 74u);
    CHECK(map.number("srr0") == 76u); // after xer and the repeated lr (75)
    CHECK(map.number("srr1") == 77u);
    CHECK_FALSE(map.number("hsrr0"));
    test::check_error(map.require("hsrr0"), ExitCode::qemu_failed,
                      "the target description has no register hsrr0");
}

TEST_CASE("gdbstub registers: what QEMU sends is checked") {
    gdb::RegisterMap map;
    test::check_error(map.add_feature("a.xml", R"(<reg name="r0" bitsize="64")"),
                      ExitCode::qemu_failed, "a.xml: an unterminated <reg element");
    test::check_error(map.add_feature("b.xml", R"(<reg bitsize="64"/>)"), ExitCode::qemu_failed,
                      "b.xml: a register without a usable name");
    test::check_error(map.add_feature("c.xml", R"(<reg name="x" regnum="-1"/>)"),
                      ExitCode::qemu_failed, "c.xml: register x has regnum \"-1\"");
    test::check_error(map.add_feature("d.xml", R"(<reg name="x" regnum="70000"/>)"),
                      ExitCode::qemu_failed, "register x has regnum \"70000\"");
    std::string many;
    for (int i = 0; i < 5000; ++i)
        many += "<reg name=\"r" + std::to_string(i) + "\"/>";
    test::check_error(map.add_feature("e.xml", many), ExitCode::qemu_failed,
                      "e.xml: more registers than svmkit reads");
    // <register> is another element: not a <reg>.
    gdb::RegisterMap other;
    REQUIRE(other.add_feature("f.xml", R"(<register name="nope"/><reg name="yes"/>)"));
    CHECK_FALSE(other.number("nope"));
    CHECK(other.number("yes") == 0u);
}

TEST_CASE("gdbstub registers: the target description's includes") {
    auto files = gdb::feature_includes(
        R"(<target><xi:include href="power64-core.xml"/><xi:include href="power-spr.xml"/></target>)");
    REQUIRE(files);
    CHECK(*files == std::vector<std::string>{"power64-core.xml", "power-spr.xml"});
    test::check_error(gdb::feature_includes(R"(<xi:include href="../etc/passwd"/>)"),
                      ExitCode::qemu_failed, "an include without a plain file name");
    test::check_error(gdb::feature_includes(R"(<xi:include href=""/>)"), ExitCode::qemu_failed,
                      "an include without a plain file name");
}

TEST_CASE("attached ultravisor: mfmsr is told from its encoding") {
    CHECK(qemu::mfmsr_target(0x7d6000a6u) == 11u); // mfmsr r11 (entry.S)
    CHECK(qemu::mfmsr_target(0x7c6000a6u) == 3u);  // mfmsr r3
    CHECK_FALSE(qemu::mfmsr_target(0x7c600124u));  // mtmsr r3
    CHECK_FALSE(qemu::mfmsr_target(0x7c6100a6u));  // RA not zero: not mfmsr
    CHECK_FALSE(qemu::mfmsr_target(qemu::kScLev2));
}

TEST_CASE("shared guest RAM: a private file both ends map, and sharing zeroes the pages") {
    test::TempDir dir("qemu");
    const std::string path = dir.file("ram");
    auto ram = qemu::SharedGuestRam::create(path, 4 * kGuestPageSize);
    REQUIRE(ram);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(static_cast<std::uint64_t>(st.st_size) == 4 * kGuestPageSize);
    const std::string text = "guest bytes";
    REQUIRE(ram->write(kGuestPageSize, std::as_bytes(std::span(text.data(), text.size()))));
    // What QEMU would see: the same file.
    CHECK(read_file(path).substr(kGuestPageSize, text.size()) == text);
    REQUIRE(ram->secure_all().value_or(0) == 4u);
    REQUIRE(ram->share(1, 1));
    CHECK(ram->state(1) == PageState::shared);
    CHECK(read_file(path).substr(kGuestPageSize, text.size()) == std::string(text.size(), '\0'));
    REQUIRE(ram->write(2 * kGuestPageSize, std::as_bytes(std::span(text.data(), text.size()))));
    test::check_error(ram->share(1, 1), ExitCode::usage, "page 0x1 is not secure");
    REQUIRE(ram->unshare(1, 1));
    test::check_error(ram->range(4 * kGuestPageSize - 2, 4), ExitCode::malformed,
                      "outside guest RAM");
    test::check_error(qemu::SharedGuestRam::create(path, kGuestPageSize), ExitCode::io,
                      "cannot create guest RAM");
    test::check_error(qemu::SharedGuestRam::create(dir.file("odd"), 4096), ExitCode::usage,
                      "multiple of 64 KiB");
}

TEST_CASE("private directory: 0700 under TMPDIR, gone after clear()") {
    test::TempDir base("qemu");
    const char* old = std::getenv("TMPDIR");
    const std::string saved = old != nullptr ? old : "";
    ::setenv("TMPDIR", base.path().c_str(), 1);
    auto dir = qemu::PrivateDirectory::create();
    if (saved.empty())
        ::unsetenv("TMPDIR");
    else
        ::setenv("TMPDIR", saved.c_str(), 1);
    REQUIRE(dir);
    const std::string path = dir->path();
    CHECK(path.rfind(base.path() + "/svmkit-qemu-", 0) == 0);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    const std::string sock = dir->entry("gdb.sock");
    write_file(sock, "x");
    dir->clear();
    CHECK(::access(sock.c_str(), F_OK) != 0);
    CHECK(::access(path.c_str(), F_OK) != 0);
}

TEST_CASE("first stage: the image appended to the initrd as a newc archive cpio reads") {
    test::TempDir dir("qemu");
    write_file(dir.file("initrd"), "12345"); // not a multiple of 4: padded
    write_file(dir.file("image"), "the secure image's bytes");
    auto initrd = InputFile::open(dir.file("initrd"));
    auto image = InputFile::open(dir.file("image"));
    REQUIRE(initrd);
    REQUIRE(image);
    REQUIRE(qemu::write_first_stage_initrd(*initrd, *image, dir.file("out")));
    const std::string out = read_file(dir.file("out"));
    CHECK(out.substr(0, 8) == std::string("12345\0\0\0", 8));
    CHECK(out.substr(8, 6) == "070701");
    write_file(dir.file("appended.cpio"), out.substr(8));
    // GNU cpio, the reference reader, lists and extracts it.
    const std::string list = "cd " + dir.path() + " && cpio -it --quiet < appended.cpio > list";
    REQUIRE(std::system(list.c_str()) == 0);
    CHECK(read_file(dir.file("list")) == "svmkit-kexec.img\n");
    const std::string extract =
        "cd " + dir.path() + " && mkdir x && cd x && cpio -id --quiet < ../appended.cpio";
    REQUIRE(std::system(extract.c_str()) == 0);
    CHECK(read_file(dir.file("x/svmkit-kexec.img")) == "the secure image's bytes");
    test::check_error(qemu::write_first_stage_initrd(*initrd, *image, dir.file("out")),
                      ExitCode::io, "cannot create");
}

TEST_CASE("QEMU command: sandboxed, sockets and RAM only in the private directory") {
    qemu::QemuConfig config;
    config.memory_size = 1ull << 30;
    config.cpus = 2;
    const qemu::QemuPaths paths{"/d/ram", "/d/gdb.sock", "/d/console.sock", "/d/kernel",
                                "/d/initrd"};
    const std::vector<std::string> argv = qemu::qemu_command(config, paths, "console=hvc0");
    const auto has = [&](const std::string& a) {
        return std::find(argv.begin(), argv.end(), a) != argv.end();
    };
    const auto after = [&](const std::string& a) {
        auto it = std::find(argv.begin(), argv.end(), a);
        return it == argv.end() || it + 1 == argv.end() ? std::string() : *(it + 1);
    };
    CHECK(argv.front() == "qemu-system-ppc64");
    CHECK(after("-sandbox").rfind("on,", 0) == 0);
    CHECK(after("-gdb") == "chardev:gdb");
    CHECK(has("socket,id=gdb,path=/d/gdb.sock,server=on,wait=off"));
    CHECK(has("socket,id=console,path=/d/console.sock,server=on,wait=off"));
    CHECK(after("-object") == "memory-backend-file,id=ram0,size=1024M,share=on,mem-path=/d/ram");
    CHECK(after("-smp") == "2");
    CHECK(after("-kernel") == "/d/kernel");
    CHECK(after("-initrd") == "/d/initrd");
    CHECK(after("-append") == "console=hvc0");
    CHECK(has("-S"));
    CHECK(has("-nodefaults"));
    for (const std::string& a : argv) // never a network port
        CHECK(a.find("tcp") == std::string::npos);
}
