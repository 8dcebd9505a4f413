// svmkit's gdbstub client against Debian's unmodified qemu-system-ppc64
// (pseries, POWER9, TCG), started halted with its guest RAM in a file the
// test maps: what the attached ultravisor will rely on. The target
// description, registers in the guest's byte order, memory seen the same
// through the stub and through the shared RAM, a breakpoint QEMU keeps
// without touching guest memory, a guest that spins past the deadline, and
// QEMU ending on kill.
#include "platform/gdbstub/client.hpp"

#include "base/child_process.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace svmkit;
using namespace svmkit::platform::gdb;

namespace {

constexpr std::size_t kRam = 256u << 20;
constexpr unsigned kRegPc = 64, kRegMsr = 65, kRegR3 = 3;

// qemu-system-ppc64, halted before its first instruction, its gdbstub on a
// unix socket and its RAM in a shared file, both in the test's directory.
class HaltedQemu {
  public:
    explicit HaltedQemu(const test::TempDir& dir)
        : socket_(dir.file("gdb.sock")), ram_path_(dir.file("ram")) {
        const std::vector<std::string> args = {
            "qemu-system-ppc64",
            "-machine",
            "pseries,memory-backend=ram0",
            "-cpu",
            "power9",
            "-m",
            "256M",
            "-object",
            "memory-backend-file,id=ram0,size=256M,share=on,mem-path=" + ram_path_,
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-serial",
            "null",
            "-monitor",
            "none",
            "-S",
            "-chardev",
            "socket,id=gdb0,path=" + socket_ + ",server=on,wait=off",
            "-gdb",
            "chardev:gdb0"};
        std::vector<char*> argv;
        for (const std::string& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        REQUIRE(::posix_spawnp(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    }
    ~HaltedQemu() {
        if (ram_ != nullptr)
            ::munmap(ram_, kRam);
        if (pid_ > 0)
            (void)wait_or_kill(pid_, std::chrono::milliseconds(0));
    }
    HaltedQemu(const HaltedQemu&) = delete;
    HaltedQemu& operator=(const HaltedQemu&) = delete;

    [[nodiscard]] const std::string& socket() const { return socket_; }
    // The guest's RAM, mapped shared (after the client connected: QEMU has
    // created the file by then).
    std::byte* ram() {
        if (ram_ == nullptr) {
            UniqueFd fd(::open(ram_path_.c_str(), O_RDWR | O_CLOEXEC));
            REQUIRE(fd.valid());
            void* p = ::mmap(nullptr, kRam, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
            REQUIRE(p != MAP_FAILED);
            ram_ = static_cast<std::byte*>(p);
        }
        return ram_;
    }
    // QEMU's wait status once it ended (within `grace`, else it is killed).
    int wait_status(std::chrono::milliseconds grace) {
        const auto status = wait_or_kill(pid_, grace);
        pid_ = -1;
        REQUIRE(status.has_value());
        return *status;
    }

  private:
    std::string socket_, ram_path_;
    pid_t pid_ = -1;
    std::byte* ram_ = nullptr;
};

bool have_qemu() {
    if (test::have_tool("qemu-system-ppc64"))
        return true;
    MESSAGE("qemu-system-ppc64 not installed: skipping");
    return false;
}

std::uint64_t reg(Client& c, unsigned n, std::endian order) {
    auto bytes = c.read_register(n);
    REQUIRE_MESSAGE(bytes.has_value(), bytes.error().message);
    REQUIRE(bytes->size() == 8);
    return register_value(std::span<const std::byte, 8>(bytes->data(), 8), order);
}

std::endian guest_order(Client& c) {
    auto msr = c.read_register(kRegMsr);
    REQUIRE_MESSAGE(msr.has_value(), msr.error().message);
    REQUIRE(msr->size() == 8);
    const auto order = msr_byte_order(std::span<const std::byte, 8>(msr->data(), 8));
    const std::string why = "the MSR's bytes fit no byte order: " + to_hex(*msr);
    REQUIRE_MESSAGE(order.has_value(), why);
    return *order;
}

// Big-endian POWER instructions (the guest runs big-endian at reset).
void put_be32(std::byte* at, std::uint32_t insn) {
    for (int i = 0; i < 4; ++i)
        at[i] = static_cast<std::byte>(insn >> (24 - 8 * i));
}

} // namespace

TEST_CASE("gdbstub qemu: registers, shared memory, a breakpoint, a deadline and kill") {
    if (!have_qemu())
        return;
    test::TempDir dir("gdbstub");
    HaltedQemu qemu(dir);
    auto connected = Client::connect(qemu.socket(), std::chrono::seconds(20));
    REQUIRE_MESSAGE(connected.has_value(), connected.error().message);
    Client& c = *connected;
    CHECK(test::contains(c.target_xml(), "power"));

    const std::endian order = guest_order(c);
    CHECK(order == std::endian::big); // firmware runs big-endian
    const std::uint64_t pc = reg(c, kRegPc, order);
    MESSAGE(fmt::format("reset: pc {:#x}, msr {:#x}", pc, reg(c, kRegMsr, order)));
    REQUIRE(pc < kRam - 64);

    // A register written through the stub reads back.
    REQUIRE(c.write_register(kRegR3, register_bytes(0x1122334455667788ull, order)).has_value());
    CHECK(reg(c, kRegR3, order) == 0x1122334455667788ull);

    // Memory: the stub's view and the shared RAM file are the same bytes,
    // both ways.
    std::byte* ram = qemu.ram();
    auto firmware = c.read_memory(0, 8192);
    REQUIRE_MESSAGE(firmware.has_value(), firmware.error().message);
    CHECK(std::equal(firmware->begin(), firmware->end(), ram));
    const auto pattern = test::random_bytes(5000, 7);
    REQUIRE(c.write_memory(0x100000, pattern).has_value());
    CHECK(std::equal(pattern.begin(), pattern.end(), ram + 0x100000));
    put_be32(ram + 0x200000, 0xdeadbeef);
    CHECK(to_hex(c.read_memory(0x200000, 4).value()) == "deadbeef");

    // Code of our own at the pc: nop, nop, b . (spins). A breakpoint on the
    // second nop stops the guest there; QEMU keeps it without writing to
    // guest memory.
    put_be32(ram + pc, 0x60000000);
    put_be32(ram + pc + 4, 0x60000000);
    put_be32(ram + pc + 8, 0x48000000);
    const std::vector<std::byte> before(ram + pc, ram + pc + 12);
    REQUIRE(c.insert_breakpoint(pc + 4).has_value());
    CHECK(std::equal(before.begin(), before.end(), ram + pc));
    auto stop = c.resume(std::chrono::seconds(20));
    REQUIRE_MESSAGE(stop.has_value(), stop.error().message);
    CHECK(stop->kind == StopReply::Kind::signal);
    CHECK(reg(c, kRegPc, order) == pc + 4);
    REQUIRE(c.remove_breakpoint(pc + 4).has_value());
    auto stepped = c.step();
    REQUIRE(stepped.has_value());
    CHECK(reg(c, kRegPc, order) == pc + 8);

    // SRR0 by the number the target description gives it, proven by the
    // CPU: set through the stub, read by the guest's own mfsrr0 r4.
    const auto srr0 = c.registers().number("srr0");
    REQUIRE(srr0.has_value());
    CHECK(*srr0 == 178u); // QEMU 7.2, POWER9: after core, FPU, Altivec and VSX
    put_be32(ram + 0x300000, 0x7c9a02a6); // mfsrr0 r4
    put_be32(ram + 0x300004, 0x48000000); // b .
    const std::uint64_t spin_pc = pc + 8;
    REQUIRE(c.write_register(kRegPc, register_bytes(0x300000, order)).has_value());
    REQUIRE(c.write_register(*srr0, register_bytes(0xc0ffee00ull, order)).has_value());
    REQUIRE(c.step().has_value());
    CHECK(reg(c, 4, order) == 0xc0ffee00ull);
    REQUIRE(c.write_register(kRegPc, register_bytes(spin_pc, order)).has_value());

    // The guest now spins: a resume past its deadline is a timeout, not a hang.
    const auto t0 = std::chrono::steady_clock::now();
    auto spun = c.resume(std::chrono::milliseconds(300));
    REQUIRE_FALSE(spun.has_value());
    CHECK(spun.error().code == ExitCode::timeout);
    CHECK(test::contains(spun.error().message, "no reply from QEMU in time"));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    // Interrupted, it stops where it spins.
    auto stopped = c.interrupt(std::chrono::seconds(5));
    REQUIRE_MESSAGE(stopped.has_value(), stopped.error().message);
    CHECK(reg(c, kRegPc, order) == pc + 8);

    // Killed while running: interrupted first (QEMU reads nothing else then).
    REQUIRE_FALSE(c.resume(std::chrono::milliseconds(100)).has_value());
    c.kill();
    const int status = qemu.wait_status(std::chrono::seconds(10));
    CHECK_FALSE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)); // it ended by itself
}

TEST_CASE("gdbstub qemu: no gdbstub at the path is an error naming it, in time") {
    test::TempDir dir("gdbstub-none");
    const auto t0 = std::chrono::steady_clock::now();
    auto c = Client::connect(dir.file("nobody.sock"), std::chrono::milliseconds(200));
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code == ExitCode::qemu_failed);
    CHECK(test::contains(c.error().message, "nobody.sock: cannot connect to QEMU's gdbstub"));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}
