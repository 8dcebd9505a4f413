// The bounded device-tree walk (guest/fdt_walk.h) that every untrusted tree
// passes first, on the host (format/dtb.hpp) and in the stub: which header
// versions it accepts, and that its bounds checks hold for every accepted
// version.
#include "format/dtb.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <libfdt.h>

using namespace svmkit;

namespace {

// A tree as kexec-tools' fs2dt writes it (version 17, last_comp_version 17,
// reserve map with the RTAS area, the initrd and the tree itself, /chosen
// bootargs and initrd range); tests/data/fdt/README.md says how it was made.
std::vector<std::byte> fs2dt_tree() {
    return test::read_bytes(SVMKIT_TEST_DATA_DIR "/fdt/kexec-fs2dt.dtb");
}

void set_be32(std::vector<std::byte>& t, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        t[at + i] = static_cast<std::byte>(v >> (24 - 8 * i));
}

void set_versions(std::vector<std::byte>& t, std::uint32_t version, std::uint32_t last_comp) {
    set_be32(t, 20, version);
    set_be32(t, 24, last_comp);
}

int check(const std::vector<std::byte>& t) {
    return format::fdt_check_full_strict(t.data(), t.size());
}

} // namespace

TEST_CASE("fdt walk: a kexec-tools fs2dt tree (version 17, last_comp_version 17) is accepted") {
    auto t = fs2dt_tree();
    REQUIRE(fdt_version(t.data()) == 17);
    REQUIRE(fdt_last_comp_version(t.data()) == 17);
    CHECK(check(t) == 0);
    CHECK(fdt_num_mem_rsv(t.data()) == 3);
}

TEST_CASE("fdt walk: the versions the specification and libfdt accept, and no others") {
    const auto base = fs2dt_tree();
    struct Case {
        std::uint32_t version, last_comp;
        bool ok;
    };
    for (const Case c :
         {Case{17, 16, true}, Case{17, 17, true}, Case{18, 16, true}, Case{18, 17, true},
          Case{16, 16, true}, Case{16, 17, false}, Case{17, 18, false}, Case{15, 15, false},
          Case{15, 2, false}, Case{19, 18, false}}) {
        CAPTURE(c.version);
        CAPTURE(c.last_comp);
        auto t = base;
        set_versions(t, c.version, c.last_comp);
        if (c.ok)
            CHECK(check(t) == 0);
        else
            CHECK(check(t) == -FDT_ERR_BADVERSION);
    }
}

TEST_CASE("fdt walk: the bounds checks hold for a last_comp_version 17 tree") {
    const auto base = fs2dt_tree();
    SUBCASE("the structure block runs past totalsize") {
        auto t = base;
        set_be32(t, 36, static_cast<std::uint32_t>(t.size())); // size_dt_struct
        CHECK(check(t) == -FDT_ERR_TRUNCATED);
    }
    SUBCASE("the strings block runs past totalsize") {
        auto t = base;
        set_be32(t, 32, static_cast<std::uint32_t>(t.size())); // size_dt_strings
        CHECK(check(t) == -FDT_ERR_TRUNCATED);
    }
    SUBCASE("totalsize larger than the buffer") {
        auto t = base;
        t.resize(t.size() - 4);
        CHECK(check(t) == -FDT_ERR_TRUNCATED);
    }
    SUBCASE("a property length beyond the structure block") {
        auto t = base;
        // The first property follows the root's FDT_BEGIN_NODE and empty name.
        const std::size_t s_off = fdt_off_dt_struct(t.data());
        set_be32(t, s_off + 8 + 4, 0xfffffff0); // FDT_PROP, then its length
        CHECK(check(t) == -FDT_ERR_BADSTRUCTURE);
    }
}
