// Helpers shared by the format unit tests: temporary directories, files,
// deterministic byte patterns, running external tools.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
  public:
    explicit TempDir(const std::string& tag = "format") {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl =
            std::string(base != nullptr ? base : "/tmp") + "/svmkit-" + tag + "-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        REQUIRE(::mkdtemp(buf.data()) != nullptr);
        path_ = buf.data();
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    std::string path_;
};

inline void write_bytes(const std::string& path, std::span<const std::byte> data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    out.close();
    REQUIRE(out.good());
}

inline std::vector<std::byte> read_bytes(const std::string& path) {
    auto data = read_small_file(path, 1ull << 30);
    REQUIRE(data.has_value());
    return *data;
}

inline std::vector<std::byte> to_bytes(std::string_view s) {
    auto b = std::as_bytes(std::span(s.data(), s.size()));
    return {b.begin(), b.end()};
}

// n bytes of a fixed pseudo-random sequence selected by `seed`.
inline std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> out(n);
    for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t v = rng();
        for (std::size_t j = 0; j < 8 && i + j < n; ++j)
            out[i + j] = static_cast<std::byte>((v >> (8 * j)) & 0xff);
    }
    return out;
}

// n bytes all equal to `value`.
inline std::vector<std::byte> filled(std::size_t n, unsigned value) {
    return std::vector<std::byte>(n, static_cast<std::byte>(value));
}

inline bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// Checks that `r` failed with `code` and a message containing `needle`.
template <typename T>
void check_error(const Result<T>& r, ExitCode code, std::string_view needle) {
    REQUIRE_FALSE(r.has_value());
    CHECK(static_cast<int>(r.error().code) == static_cast<int>(code));
    CHECK_MESSAGE(contains(r.error().message, needle),
                  "message '" << r.error().message << "' lacks '" << needle << "'");
}

// Runs a shell command with stdin closed and returns its stdout; `status`
// receives the exit status of the shell.
inline std::string run_capture(const std::string& command, int& status) {
    std::string out;
    FILE* pipe = ::popen(("(" + command + ") </dev/null 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
        out.append(buf, n);
    status = ::pclose(pipe);
    return out;
}

inline bool have_tool(const std::string& name) {
    return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

} // namespace svmkit::test
