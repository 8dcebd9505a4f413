// The boot.cfg parser (loader/boot_cfg.h): the grammar's accepted forms and
// every error, each with its message and the line it names.
#include "loader/boot_cfg.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

using namespace std::string_literals;
using svmkit::loader::BootCfgError;
using svmkit::loader::BootMenu;

namespace {

struct Parsed {
    bool ok = false;
    std::unique_ptr<BootMenu> menu = std::make_unique<BootMenu>();
    BootCfgError err{0, nullptr};
};

// Parses a heap copy of exactly the text's bytes (no NUL after them), so ASan
// catches a read past the end.
Parsed parse(const std::string& text) {
    Parsed p;
    std::unique_ptr<char[]> exact(new char[text.size() == 0 ? 1 : text.size()]);
    text.copy(exact.get(), text.size());
    p.ok = svmkit::loader::parse_boot_cfg(exact.get(), text.size(), p.menu.get(), &p.err);
    return p;
}

void check_error(const std::string& text, unsigned line, const std::string& message) {
    CAPTURE(text);
    const Parsed p = parse(text);
    REQUIRE_FALSE(p.ok);
    REQUIRE(p.err.message != nullptr);
    CHECK(std::string(p.err.message) == message);
    CHECK(p.err.line == line);
}

const std::string kEntry = "menuentry \"a\" {\n  linux /a.img\n}\n";

} // namespace

TEST_CASE("loader boot.cfg: a full menu") {
    const Parsed p = parse("# svmkit boot menu\n"
                           "\n"
                           "set timeout=5\n"
                           "set default=\"second\"\n"
                           "menuentry \"first\" {\n"
                           "    linux /images/first.img\n"
                           "}\n"
                           "  menuentry 'second' {  \r\n"
                           "\tlinux   /images/second.img   console=hvc0  svm=on  # kept \r\n"
                           "}\n");
    REQUIRE_MESSAGE(p.ok, p.err.message, " at line ", p.err.line);
    REQUIRE(p.menu->count == 2);
    CHECK(p.menu->timeout == 5);
    CHECK(p.menu->default_index == 1);
    CHECK(std::string(p.menu->entries[0].name) == "first");
    CHECK(std::string(p.menu->entries[0].image_path) == "/images/first.img");
    CHECK(std::string(p.menu->entries[0].cmdline).empty());
    CHECK(std::string(p.menu->entries[1].name) == "second");
    CHECK(std::string(p.menu->entries[1].image_path) == "/images/second.img");
    // The rest of the line, trimmed; inner spacing and '#' kept verbatim.
    CHECK(std::string(p.menu->entries[1].cmdline) == "console=hvc0  svm=on  # kept");
    CHECK(svmkit::loader::find_boot_entry(*p.menu, "first") == 0);
    CHECK(svmkit::loader::find_boot_entry(*p.menu, "second") == 1);
    CHECK(svmkit::loader::find_boot_entry(*p.menu, "sec") == -1); // exact names only
    CHECK(svmkit::loader::find_boot_entry(*p.menu, "second ") == -1);
}

TEST_CASE("loader boot.cfg: defaults and edge forms") {
    SUBCASE("no set default: the first entry; no timeout: 0") {
        const Parsed p = parse(kEntry);
        REQUIRE(p.ok);
        CHECK(p.menu->default_index == 0);
        CHECK(p.menu->timeout == 0);
    }
    SUBCASE("bare default word, no final newline") {
        const Parsed p = parse("set default=b\n" + kEntry + "menuentry \"b\" {\nlinux /b\n}");
        REQUIRE(p.ok);
        CHECK(p.menu->default_index == 1);
    }
    SUBCASE("names with spaces, longest lengths") {
        const std::string name(63, 'n');
        const std::string path = "/" + std::string(126, 'p');
        const std::string cmdline(1023, 'c');
        const Parsed p = parse("menuentry \"" + name + "\" {\nlinux " + path + " " + cmdline +
                               "\n}\nmenuentry \"with space\" {\nlinux /x\n}\n");
        REQUIRE_MESSAGE(p.ok, p.err.message);
        CHECK(std::string(p.menu->entries[0].name) == name);
        CHECK(std::string(p.menu->entries[0].image_path) == path);
        CHECK(std::string(p.menu->entries[0].cmdline) == cmdline);
        CHECK(std::string(p.menu->entries[1].name) == "with space");
    }
    SUBCASE("16 entries") {
        std::string text;
        for (int i = 0; i < 16; ++i)
            text += "menuentry \"e" + std::to_string(i) + "\" {\nlinux /x\n}\n";
        const Parsed p = parse(text);
        REQUIRE(p.ok);
        CHECK(p.menu->count == 16);
    }
    SUBCASE("timeout at its limit") {
        const Parsed p = parse("set timeout=4294967295\n" + kEntry);
        REQUIRE(p.ok);
        CHECK(p.menu->timeout == 4294967295u);
    }
}

TEST_CASE("loader boot.cfg: every error names its problem and line") {
    check_error("", 0, "no menuentry");
    check_error("# only a comment\n\n", 0, "no menuentry");
    check_error(kEntry + "boot\n", 4, "unknown keyword");
    check_error("menuentry \"a\" {\n  linux /a.img\n  kernel /b\n}\n", 3, "unknown keyword");
    check_error("menuentry \"a\" {\n  linux /a.img\n  initrd /i\n}\n", 3,
                "initrd not supported: the secure image carries its initrd");
    check_error("\nmenuentry \"a\" {\n  linux /a.img\n", 2, "unterminated menuentry");
    check_error("set default=\"b\"\n" + kEntry, 1, "default entry not found");
    check_error("set default=\"A\"\n" + kEntry, 1, "default entry not found"); // case matters
    check_error("set default=\"a\"\nset default=\"a\"\n" + kEntry, 2, "default set twice");
    check_error("set default=\"\"\n" + kEntry, 1, "empty default entry name");
    check_error("set default=\"" + std::string(64, 'x') + "\"\n" + kEntry, 1,
                "default entry name too long");
    check_error("set default=\"a\n" + kEntry, 1, "missing closing quote");
    check_error("set default=\"a\" x\n" + kEntry, 1, "text after the value");
    check_error("set default\n" + kEntry, 1, "expected NAME=VALUE after set");
    check_error("set color=red\n" + kEntry, 1, "unknown variable");
    check_error("set timeout=abc\n" + kEntry, 1, "timeout is not a number");
    check_error("set timeout=4294967296\n" + kEntry, 1, "timeout is not a number");
    check_error("set timeout=\n" + kEntry, 1, "timeout is not a number");
    check_error(kEntry + kEntry, 4, "duplicate menuentry name");
    check_error("menuentry \"a\" {\nmenuentry \"b\" {\n", 2, "menuentry inside menuentry");
    check_error("menuentry a {\nlinux /a\n}\n", 1, "menuentry name must be quoted");
    check_error("menuentry \"a {\nlinux /a\n}\n", 1, "missing closing quote");
    check_error("menuentry \"\" {\nlinux /a\n}\n", 1, "empty menuentry name");
    check_error("menuentry \"" + std::string(64, 'n') + "\" {\nlinux /a\n}\n", 1,
                "menuentry name too long");
    check_error("menuentry \"a\"\n{\nlinux /a\n}\n", 1, "expected '{' after the menuentry name");
    check_error("menuentry \"a\" { linux /a }\n", 1, "text after '{'");
    check_error(kEntry + "}\n", 4, "'}' outside menuentry");
    check_error("menuentry \"a\" {\nlinux /a\n} x\n", 3, "text after '}'");
    check_error("menuentry \"a\" {\n}\n", 2, "menuentry without linux");
    check_error("linux /a\n", 1, "linux outside menuentry");
    check_error("menuentry \"a\" {\nlinux /a\nlinux /b\n}\n", 3, "second linux in one menuentry");
    check_error("menuentry \"a\" {\nlinux\n}\n", 2, "linux without an image path");
    check_error("menuentry \"a\" {\nlinux a.img\n}\n", 2, "image path must be absolute");
    check_error("menuentry \"a\" {\nlinux /" + std::string(127, 'p') + "\n}\n", 2,
                "image path too long");
    check_error("menuentry \"a\" {\nlinux /a " + std::string(1024, 'c') + "\n}\n", 2,
                "command line too long");
    check_error("menuentry \"a\" {\nlinux /a\0b\n}\n"s, 2, "NUL byte in line");
    check_error(std::string(65537, '#'), 0, "boot.cfg too large");
    std::string seventeen;
    for (int i = 0; i < 17; ++i)
        seventeen += "menuentry \"e" + std::to_string(i) + "\" {\nlinux /x\n}\n";
    check_error(seventeen, 49, "too many menuentries");
}

TEST_CASE("loader boot.cfg: truncations of a valid file never read past the end") {
    const std::string text = "set default=\"b\"\nset timeout=3\n" + kEntry +
                             "menuentry \"b\" {\n  linux /b.img x=1\n}\n";
    REQUIRE(parse(text).ok);
    for (std::size_t n = 0; n < text.size(); ++n) {
        CAPTURE(n);
        const Parsed p = parse(text.substr(0, n));
        if (!p.ok)
            CHECK(p.err.message != nullptr);
    }
}
