// Flattening an Open Firmware device tree (guest/of_flatten.h), the
// firmware-style stub's first step towards UV_ESM, against a small fake
// client interface: the FDT it writes (checked with libfdt and dtc), and a
// clear stop on each kind of nonsense a firmware can answer.
#include "guest/of_flatten.cpp" // NOLINT(bugprone-suspicious-include)
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <libfdt.h>

#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

using namespace svmkit::guest;

namespace {

struct FakeNode {
    std::string path;
    std::vector<std::pair<std::string, std::string>> props;
    std::vector<uint32_t> children;
    uint32_t parent = 0;
};

// An Open Firmware tree answering the client calls the flattening makes, as
// SLOF does; tests break one answer at a time.
struct FakeOf {
    std::map<uint32_t, FakeNode> nodes;
    uint32_t root = 0;
    // Breakage knobs.
    uint32_t loop_peer_of = 0;     // peer(this) = this
    uint32_t bad_path_of = 0;      // package-to-path answers another parent's path
    int32_t proplen_delta = 0;     // getprop answers this much more than getproplen
    bool nextprop_repeats = false; // nextprop answers the first name forever
    bool nextprop_unterminated = false;
    int32_t forced_proplen = -2;    // getproplen answers this (-2: the truth)
    uint32_t fail_child_of = 0;     // child(this) fails
    mutable std::size_t cursor = 0; // nextprop's position in the node's list

    uint32_t add(uint32_t parent, const std::string& path) {
        const auto ph = static_cast<uint32_t>(0x1000 + nodes.size() * 0x10);
        nodes[ph] = FakeNode{path, {}, {}, parent};
        if (parent != 0)
            nodes[parent].children.push_back(ph);
        else
            root = ph;
        return ph;
    }
    void prop(uint32_t ph, const std::string& name, const std::string& value) {
        nodes[ph].props.emplace_back(name, value);
    }

    uint32_t peer(uint32_t ph) const {
        if (ph == 0)
            return root;
        if (ph == loop_peer_of)
            return ph;
        const auto it = nodes.find(ph);
        if (it == nodes.end())
            return kOfInvalid;
        if (it->second.parent == 0)
            return 0;
        const auto& sib = nodes.at(it->second.parent).children;
        for (std::size_t i = 0; i + 1 < sib.size(); ++i)
            if (sib[i] == ph)
                return sib[i + 1];
        return 0;
    }
    uint32_t child(uint32_t ph) const {
        const auto it = nodes.find(ph);
        if (it == nodes.end() || ph == fail_child_of)
            return kOfInvalid;
        return it->second.children.empty() ? 0 : it->second.children.front();
    }
    const std::string* find(uint32_t ph, const char* name) const {
        for (const auto& [n, v] : nodes.at(ph).props)
            if (n == name)
                return &v;
        return nullptr;
    }
    int32_t getproplen(uint32_t ph, const char* name) const {
        if (forced_proplen != -2)
            return forced_proplen;
        const std::string* v = find(ph, name);
        return v == nullptr ? -1 : static_cast<int32_t>(v->size());
    }
    int32_t getprop(uint32_t ph, const char* name, void* buf, uint32_t size) const {
        const std::string* v = find(ph, name);
        if (v == nullptr)
            return -1;
        std::memcpy(buf, v->data(), std::min<std::size_t>(size, v->size()));
        return static_cast<int32_t>(v->size()) + proplen_delta;
    }
    int32_t nextprop(uint32_t ph, const char* prev, char* buf) const {
        // By position, as SLOF keeps a node's properties in a list.
        const auto& props = nodes.at(ph).props;
        if (prev[0] == '\0')
            cursor = 0;
        else if (!nextprop_repeats)
            ++cursor;
        const std::size_t i = cursor;
        if (i >= props.size())
            return 0;
        if (nextprop_unterminated) {
            std::memset(buf, 'x', kOfPropNameBuf);
            return 1;
        }
        std::strcpy(buf, props[i].first.c_str());
        return 1;
    }
    int32_t package_to_path(uint32_t ph, char* buf, uint32_t size) const {
        std::string p = nodes.at(ph).path;
        if (ph == bad_path_of)
            p = "/elsewhere/" + p.substr(p.rfind('/') + 1);
        std::memcpy(buf, p.data(), std::min<std::size_t>(size, p.size()));
        return static_cast<int32_t>(p.size());
    }
};

std::string cells(std::initializer_list<uint32_t> v) {
    std::string s;
    for (uint32_t c : v)
        for (int i = 3; i >= 0; --i)
            s.push_back(static_cast<char>(c >> (8 * i)));
    return s;
}

// A pseries-like tree: /, /chosen, /cpus/PowerPC,POWER9@0, /memory@0,
// /rtas, /vdevice/vty@71000000 (with its own phandle property).
FakeOf small_tree() {
    FakeOf of;
    const uint32_t root = of.add(0, "/");
    of.prop(root, "name", std::string("", 1));
    of.prop(root, "#address-cells", cells({2}));
    of.prop(root, "#size-cells", cells({2}));
    of.prop(root, "device_type", std::string("chrp", 5));
    const uint32_t chosen = of.add(root, "/chosen");
    of.prop(chosen, "bootargs", std::string("console=hvc0", 13));
    const uint32_t cpus = of.add(root, "/cpus");
    of.prop(cpus, "#address-cells", cells({1}));
    of.prop(cpus, "#size-cells", cells({0}));
    const uint32_t cpu = of.add(cpus, "/cpus/PowerPC,POWER9@0");
    of.prop(cpu, "reg", cells({0}));
    of.prop(cpu, "device_type", std::string("cpu", 4));
    const uint32_t mem = of.add(root, "/memory@0");
    of.prop(mem, "device_type", std::string("memory", 7));
    of.prop(mem, "reg", cells({0, 0, 0, 0x40000000}));
    const uint32_t rtas = of.add(root, "/rtas");
    of.prop(rtas, "rtas-size", cells({20}));
    of.prop(rtas, "ibm,os-term", cells({0x2017}));
    const uint32_t vdev = of.add(root, "/vdevice");
    const uint32_t vty = of.add(vdev, "/vdevice/vty@71000000");
    of.prop(vty, "compatible", std::string("hvterm1", 8));
    of.prop(vty, "reg", cells({0x71000000}));
    of.prop(vty, "phandle", cells({0x77}));
    of.prop(vty, "empty", "");
    return of;
}

struct Flat {
    std::vector<uint8_t> buf;
    OfFlattenResult r;
};

Flat flatten(const FakeOf& of, uint32_t boot_cpu = 0, std::size_t size = 64 << 10) {
    Flat f{std::vector<uint8_t>(size), {}};
    OfWalk walk;
    const Range reserved[1] = {Range{0x2a00000, 0x1000}};
    f.r = of_flatten(of, f.buf.data(), static_cast<uint32_t>(size), reserved, 1, boot_cpu, walk);
    return f;
}

uint32_t be32_at(const void* p) {
    const auto* b = static_cast<const uint8_t*>(p);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

} // namespace

TEST_CASE("of flatten: a pseries-like tree becomes an FDT with every node, property and phandle") {
    const FakeOf of = small_tree();
    Flat f = flatten(of, 0);
    REQUIRE(f.r.error == OfFlattenError::none);
    CHECK(f.r.nodes == 8);
    const void* fdt = f.buf.data();
    REQUIRE(fdt_check_full(fdt, fdt_totalsize(fdt)) == 0);
    CHECK(fdt_version(fdt) == 17);
    CHECK(fdt_boot_cpuid_phys(fdt) == 0);
    REQUIRE(fdt_num_mem_rsv(fdt) == 1);
    uint64_t base = 0;
    uint64_t size = 0;
    REQUIRE(fdt_get_mem_rsv(fdt, 0, &base, &size) == 0);
    CHECK(base == 0x2a00000);
    CHECK(size == 0x1000);

    const int cpu = fdt_path_offset(fdt, "/cpus/PowerPC,POWER9@0");
    REQUIRE(cpu >= 0);
    int len = 0;
    const void* reg = fdt_getprop(fdt, cpu, "reg", &len);
    REQUIRE(len == 4);
    CHECK(be32_at(reg) == 0);
    // Nodes without a phandle get the firmware's; one with its own keeps it.
    CHECK(fdt_get_phandle(fdt, cpu) == of.nodes.begin()->first + 0x30);
    const int vty = fdt_path_offset(fdt, "/vdevice/vty@71000000");
    REQUIRE(vty >= 0);
    CHECK(fdt_get_phandle(fdt, vty) == 0x77);
    CHECK(fdt_getprop(fdt, vty, "empty", &len) != nullptr);
    CHECK(len == 0);
    CHECK(fdt_node_offset_by_compatible(fdt, -1, "hvterm1") == vty);
    // Children in the firmware's order.
    const int root = fdt_path_offset(fdt, "/");
    const int first = fdt_first_subnode(fdt, root);
    CHECK(std::string(fdt_get_name(fdt, first, nullptr)) == "chosen");
}

TEST_CASE("of flatten: the boot CPU, RTAS and /reserved-memory complete the tree") {
    FakeOf of = small_tree();
    const uint32_t rm = of.add(of.root, "/reserved-memory");
    of.prop(rm, "#address-cells", cells({2}));
    of.prop(rm, "#size-cells", cells({2}));
    of.prop(rm, "ranges", "");
    const uint32_t region = of.add(rm, "/reserved-memory/fw@30000000");
    of.prop(region, "reg", cells({0, 0x30000000, 0, 0x100000}));
    Flat f = flatten(of, 3);
    REQUIRE(f.r.error == OfFlattenError::none);
    void* fdt = f.buf.data();
    CHECK(fdt_boot_cpuid_phys(fdt) == 3);
    REQUIRE(of_finish_tree(fdt, static_cast<uint32_t>(f.buf.size()), 0x2a00000, 0x2a00000, 20) ==
            0);
    REQUIRE(fdt_check_full(fdt, fdt_totalsize(fdt)) == 0);
    CHECK(fdt_totalsize(fdt) < f.buf.size()); // packed
    const int rtas = fdt_path_offset(fdt, "/rtas");
    REQUIRE(rtas >= 0);
    uint64_t v = 0;
    REQUIRE(fdt_read_u64(fdt, rtas, "linux,rtas-base", &v));
    CHECK(v == 0x2a00000);
    REQUIRE(fdt_read_u64(fdt, rtas, "linux,rtas-entry", &v));
    CHECK(v == 0x2a00000);
    REQUIRE(fdt_read_u64(fdt, rtas, "rtas-size", &v));
    CHECK(v == 20);
    REQUIRE(fdt_num_mem_rsv(fdt) == 2);
    uint64_t base = 0;
    uint64_t size = 0;
    REQUIRE(fdt_get_mem_rsv(fdt, 1, &base, &size) == 0);
    CHECK(base == 0x30000000);
    CHECK(size == 0x100000);

    // dtc reads it back, with the same reserve map, boot CPU and RTAS.
    const svmkit::test::TempDir dir("of-flatten");
    svmkit::test::write_bytes(dir.file("of.dtb"),
                              std::as_bytes(std::span(f.buf.data(), fdt_totalsize(fdt))));
    int status = 0;
    const std::string dts =
        svmkit::test::run_capture("dtc -I dtb -O dts " + dir.file("of.dtb"), status);
    REQUIRE(status == 0);
    CHECK(dts.find("/memreserve/\t0x0000000002a00000 0x0000000000001000;") != std::string::npos);
    CHECK(dts.find("/memreserve/\t0x0000000030000000 0x0000000000100000;") != std::string::npos);
    CHECK(dts.find("linux,rtas-entry = <0x2a00000>;") != std::string::npos);
    CHECK(dts.find("vty@71000000 {") != std::string::npos);
    const std::string dump = svmkit::test::run_capture("fdtdump " + dir.file("of.dtb"), status);
    REQUIRE(status == 0);
    CHECK(dump.find("// boot_cpuid_phys:\t0x3") != std::string::npos);
}

TEST_CASE("of flatten: a malformed /reserved-memory is refused when the tree is completed") {
    FakeOf of = small_tree();
    const uint32_t rm = of.add(of.root, "/reserved-memory");
    of.prop(rm, "#address-cells", cells({2}));
    of.prop(rm, "#size-cells", cells({2}));
    const uint32_t region = of.add(rm, "/reserved-memory/fw@30000000");
    of.prop(region, "reg", cells({0, 0x30000000}));
    Flat f = flatten(of);
    REQUIRE(f.r.error == OfFlattenError::none);
    CHECK(of_finish_tree(f.buf.data(), static_cast<uint32_t>(f.buf.size()), 0x2a00000, 0x2a00000,
                         20) == -FDT_ERR_BADVALUE);
}

TEST_CASE("of flatten: each kind of firmware nonsense stops the walk with its cause and node") {
    SUBCASE("a peer loop is bounded by the node count") {
        FakeOf of = small_tree();
        of.loop_peer_of = of.nodes.rbegin()->first; // the last node: its own peer forever
        const Flat f = flatten(of, 0, 1 << 20);
        CHECK(f.r.error == OfFlattenError::too_many_nodes);
    }
    SUBCASE("nesting deeper than the bound") {
        FakeOf of = small_tree();
        uint32_t at = of.root;
        std::string path;
        for (int i = 0; i < kOfMaxDepth; ++i) {
            path += "/n" + std::to_string(i);
            at = of.add(at, path);
        }
        CHECK(flatten(of).r.error == OfFlattenError::too_deep);
    }
    SUBCASE("a path that is not below the parent's") {
        FakeOf of = small_tree();
        of.bad_path_of = of.nodes.rbegin()->first;
        const Flat f = flatten(of);
        CHECK(f.r.error == OfFlattenError::bad_path);
        CHECK(std::string(f.r.path) == "/vdevice");
    }
    SUBCASE("a refused path names the parent, not the previous node") {
        FakeOf of = small_tree();
        uint32_t cpus = 0;
        for (const auto& [ph, node] : of.nodes)
            if (node.path == "/cpus")
                cpus = ph;
        of.bad_path_of = of.add(cpus, "/cpus/PowerPC,POWER9@1");
        const Flat f = flatten(of);
        CHECK(f.r.error == OfFlattenError::bad_path);
        CHECK(std::string(f.r.path) == "/cpus");
    }
    SUBCASE("a unit name with a space") {
        FakeOf of = small_tree();
        of.add(of.root, "/bad name");
        CHECK(flatten(of).r.error == OfFlattenError::bad_node_name);
    }
    SUBCASE("a root whose path is not /") {
        FakeOf of = small_tree();
        of.nodes[of.root].path = "/root";
        CHECK(flatten(of).r.error == OfFlattenError::bad_path);
    }
    SUBCASE("getprop answering another length than getproplen") {
        FakeOf of = small_tree();
        of.proplen_delta = 4;
        const Flat f = flatten(of);
        CHECK(f.r.error == OfFlattenError::property_changed);
        CHECK(std::string(f.r.path) == "/");
    }
    SUBCASE("a property longer than the bound") {
        FakeOf of = small_tree();
        of.forced_proplen = kOfMaxPropLen + 1;
        CHECK(flatten(of).r.error == OfFlattenError::bad_property_length);
    }
    SUBCASE("a property nextprop names but getproplen does not know") {
        FakeOf of = small_tree();
        of.forced_proplen = -1;
        CHECK(flatten(of).r.error == OfFlattenError::bad_property_length);
    }
    SUBCASE("nextprop answering the same name forever") {
        FakeOf of = small_tree();
        of.nextprop_repeats = true;
        CHECK(flatten(of).r.error == OfFlattenError::too_many_props);
    }
    SUBCASE("a property name without its NUL") {
        FakeOf of = small_tree();
        of.nextprop_unterminated = true;
        CHECK(flatten(of).r.error == OfFlattenError::bad_property_name);
    }
    SUBCASE("a property twice in one node") {
        FakeOf of = small_tree();
        of.prop(of.root, "twice", "a");
        of.prop(of.root, "other", "b");
        of.prop(of.root, "twice", "c");
        const Flat f = flatten(of);
        CHECK(f.r.error == OfFlattenError::duplicate_property);
        CHECK(std::string(f.r.path) == "/");
    }
    SUBCASE("a tree larger than the buffer") {
        const FakeOf of = small_tree();
        const Flat f = flatten(of, 0, 512);
        CHECK(f.r.error == OfFlattenError::no_space);
        CHECK(f.r.fdt_err == -FDT_ERR_NOSPACE);
    }
    SUBCASE("no root") {
        FakeOf of = small_tree();
        of.root = 0;
        CHECK(flatten(of).r.error == OfFlattenError::no_root);
    }
    SUBCASE("a child call that fails") {
        FakeOf of = small_tree();
        of.fail_child_of = of.nodes[of.root].children.front();
        CHECK(flatten(of).r.error == OfFlattenError::call_failed);
    }
}
