// The hypervisor test hooks' log lines (platform/hv_hooks.*): each is one
// JSON object that a JSON parser reads back with the values the hook saw,
// and any string in it, non-ASCII or not UTF-8 at all, comes out escaped
// correctly.
#include "platform/hv_hooks.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

using namespace svmkit;
using namespace svmkit::platform;
using Json = nlohmann::ordered_json;

namespace {

Json run(const std::string& spec, HvHookContext& ctx) {
    auto hook = parse_hv_hook(spec);
    REQUIRE(hook);
    const std::string line = run_hv_hook(*hook, ctx);
    CHECK(line.find('\n') == std::string::npos);
    return Json::parse(line);
}

} // namespace

TEST_CASE("hv hooks: each action's line parses back with what it saw") {
    std::vector<std::byte> memory(0x30000);
    const std::vector<std::pair<std::uint64_t, std::uint64_t>> shared{{1, 2}};
    HvHookContext ctx;
    ctx.memory = memory;
    ctx.shared = shared;

    Json w = run("loaded:write=0x100:cafe", ctx);
    CHECK(w["event"] == "loaded");
    CHECK(w["action"] == "write");
    CHECK(w["gpa"] == 0x100);
    CHECK(w["bytes"] == 2);
    CHECK(memory[0x100] == std::byte{0xca});

    Json s = run("esm-done:scan=cafe", ctx);
    CHECK(s["found"] == 1);
    CHECK(s["at"] == Json::array({0x100}));
    CHECK(s["pattern"] == "cafe");

    Json r = run("exit:read=0x100+4", ctx);
    CHECK(r["nonzero"] == 2);
    CHECK(r["sha256"].get<std::string>().size() == 64);

    Json out = run("exit:read=0x30000+1", ctx);
    CHECK(out["error"] == "outside guest RAM");

    Json sh = run("esm-done:shared", ctx);
    CHECK(sh["ranges"] == Json::array({Json{{"gpa", 0x10000}, {"size", 0x20000}}}));
    CHECK(sh.dump() ==
          R"({"event":"esm-done","action":"shared","ranges":[{"gpa":65536,"size":131072}]})");
}

TEST_CASE("hv hooks: strings are escaped by the JSON library, UTF-8 kept, bad bytes replaced") {
    Json j;
    j["event"] = "exit";
    j["path"] = "/tmp/\xc3\xadmg \"quoted\"\n"; // "ímg", quotes, a newline
    const std::string line = hv_hook_json_line(j);
    CHECK(line == "{\"event\":\"exit\",\"path\":\"/tmp/\xc3\xadmg \\\"quoted\\\"\\n\"}");
    CHECK(Json::parse(line)["path"] == "/tmp/\xc3\xadmg \"quoted\"\n");

    Json bad;
    bad["error"] = std::string("caf\xe9"); // Latin-1, not UTF-8
    const std::string replaced = hv_hook_json_line(bad);
    CHECK(replaced == "{\"error\":\"caf\xef\xbf\xbd\"}"); // U+FFFD
    CHECK(Json::parse(replaced)["error"] == "caf\xef\xbf\xbd");
}
