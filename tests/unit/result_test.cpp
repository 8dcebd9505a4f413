// base/result.hpp: the value-or-error type every fallible function returns.
#include "base/error.hpp"

#include <doctest/doctest.h>
#include <memory>
#include <string>
#include <vector>

using namespace svmkit;

namespace {

Result<int> parse_positive(int v) {
    if (v <= 0)
        return fail(ExitCode::usage, "{} is not positive", v);
    return v;
}

Result<int> doubled(int v) {
    SVM_TRY(x, parse_positive(v));
    return x * 2;
}

Result<void> check(int v) {
    SVM_CHECK(parse_positive(v));
    return {};
}

} // namespace

TEST_CASE("Result holds a value or an error, never both") {
    Result<int> ok = parse_positive(4);
    REQUIRE(ok.has_value());
    CHECK(static_cast<bool>(ok));
    CHECK(*ok == 4);
    CHECK(ok.value_or(7) == 4);

    Result<int> bad = parse_positive(-1);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == ExitCode::usage);
    CHECK(bad.error().message == "-1 is not positive");
    CHECK(bad.value_or(7) == 7);
}

TEST_CASE("SVM_TRY and SVM_CHECK propagate the first error unchanged") {
    CHECK(*doubled(5) == 10);
    auto e = doubled(0);
    REQUIRE_FALSE(e.has_value());
    CHECK(e.error().message == "0 is not positive");
    CHECK(check(1).has_value());
    auto v = check(-3);
    REQUIRE_FALSE(v.has_value());
    CHECK(v.error().code == ExitCode::usage);
}

TEST_CASE("Result works with move-only values and void") {
    Result<std::unique_ptr<int>> p = std::make_unique<int>(9);
    REQUIRE(p.has_value());
    std::unique_ptr<int> taken = std::move(*p);
    CHECK(*taken == 9);
    Result<std::vector<std::string>> list = std::vector<std::string>{"a", "b"};
    CHECK(list->size() == 2);
    Result<void> done;
    CHECK(done.has_value());
    Result<void> failed = unexpected(Error{ExitCode::io, "disk"});
    REQUIRE_FALSE(failed.has_value());
    CHECK(failed.error().code == ExitCode::io);
    CHECK(with_context(failed.error(), "out.img").message == "out.img: disk");
}
