// Writing and strictly reading the flattened device trees svmkit stores: the
// manifest (format/manifest_fdt.cpp) and the PEF ibm,esm nodes
// (format/esm_blob.cpp) share these helpers.
//
// The reader works on a tree that fdt_check_full_strict() already accepted;
// every message names the file (`where`) and what the tree is (`subject`:
// "manifest", "esm blob", ...).
#pragma once

#include "base/error.hpp"

#include <libfdt.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace svmkit::format::fdt {

// Sequential-write FDT builder that grows its buffer when libfdt runs out of room.
class FdtBuilder {
  public:
    FdtBuilder() : buf_(16ull * 1024) { check(fdt_create(buf_.data(), size())); }

    void begin(const char* name) {
        retry([&] { return fdt_begin_node(buf_.data(), name); });
    }
    void end() {
        retry([&] { return fdt_end_node(buf_.data()); });
    }
    void prop(const char* name, std::span<const std::byte> value) {
        retry([&] {
            return fdt_property(buf_.data(), name, value.data(), static_cast<int>(value.size()));
        });
    }
    void prop_string(const char* name, std::string_view s) {
        std::string z(s);
        retry([&] {
            return fdt_property(buf_.data(), name, z.c_str(), static_cast<int>(z.size() + 1));
        });
    }
    void prop_u32(const char* name, std::uint32_t v) {
        retry([&] { return fdt_property_u32(buf_.data(), name, v); });
    }
    void prop_u64(const char* name, std::uint64_t v) {
        retry([&] { return fdt_property_u64(buf_.data(), name, v); });
    }
    std::vector<std::byte> finish() {
        retry([&] { return fdt_finish(buf_.data()); });
        buf_.resize(fdt_totalsize(buf_.data()));
        return std::move(buf_);
    }
    void finish_reservemap() {
        retry([&] { return fdt_finish_reservemap(buf_.data()); });
    }

  private:
    int size() const { return static_cast<int>(buf_.size()); }
    template <typename F>
    void retry(F op) {
        for (;;) {
            int err = op();
            if (err != -FDT_ERR_NOSPACE) {
                check(err);
                return;
            }
            buf_.resize(buf_.size() * 2);
            check(fdt_resize(buf_.data(), buf_.data(), size()));
        }
    }
    static void check(int err) {
        // Only NOSPACE can happen with well-formed calls; anything else is a
        // programming error in the caller.
        if (err < 0)
            __builtin_trap();
    }
    std::vector<std::byte> buf_;
};

using Props = std::map<std::string, std::span<const std::byte>>;

// A read-only view of an already fdt_check_full()-validated tree.
class FdtReader {
  public:
    FdtReader(const void* fdt, const std::string& where, std::string subject)
        : fdt_(fdt), where_(where), subject_(std::move(subject)) {}

    [[nodiscard]] std::string node_name(int node) const {
        int len = 0;
        const char* name = fdt_get_name(fdt_, node, &len);
        return name != nullptr && len >= 0 ? std::string(name, static_cast<std::size_t>(len))
                                           : std::string();
    }
    std::string path(int node) const {
        char buf[256];
        if (fdt_get_path(fdt_, node, buf, sizeof buf) != 0)
            return "?";
        return buf;
    }

    // Collects a node's properties, rejecting unknown and repeated names.
    Result<Props> properties(int node, std::initializer_list<std::string_view> allowed) const {
        Props props;
        int prop = 0;
        fdt_for_each_property_offset(prop, fdt_, node) {
            const char* name = nullptr;
            int len = 0;
            const void* value = fdt_getprop_by_offset(fdt_, prop, &name, &len);
            if (value == nullptr || name == nullptr || len < 0)
                return fail(ExitCode::malformed, "{}: {}: unreadable property in {}", where_,
                            subject_, path(node));
            std::string key(name);
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
                return fail(ExitCode::malformed, "{}: {}: unknown property '{}' in {}", where_,
                            subject_, key, path(node));
            auto bytes =
                std::span(static_cast<const std::byte*>(value), static_cast<std::size_t>(len));
            if (!props.emplace(key, bytes).second)
                return fail(ExitCode::malformed, "{}: {}: property '{}' repeated in {}", where_,
                            subject_, key, path(node));
        }
        return props;
    }

    // Lists a node's children, rejecting repeated names.
    Result<std::vector<std::pair<std::string, int>>> children(int node) const {
        std::vector<std::pair<std::string, int>> out;
        std::set<std::string> seen;
        int child = 0;
        fdt_for_each_subnode(child, fdt_, node) {
            std::string name = node_name(child);
            if (!seen.insert(name).second)
                return fail(ExitCode::malformed, "{}: {}: node '{}' repeated in {}", where_,
                            subject_, name, path(node));
            out.emplace_back(name, child);
        }
        if (child != -FDT_ERR_NOTFOUND)
            return fail(ExitCode::malformed, "{}: {}: bad node structure under {}", where_,
                        subject_, path(node));
        return out;
    }

    const void* fdt_;
    const std::string& where_;
    std::string subject_;
};

inline std::uint64_t be_value(std::span<const std::byte> b) {
    std::uint64_t v = 0;
    for (std::byte x : b)
        v = (v << 8) | static_cast<std::uint64_t>(x);
    return v;
}

// Typed access to the properties of one node; `node` names it in messages.
class PropDecoder {
  public:
    PropDecoder(const Props& props, std::string node, const std::string& where, std::string subject)
        : props_(props), node_(std::move(node)), where_(where), subject_(std::move(subject)) {}

    Result<std::span<const std::byte>> raw(const std::string& name) const {
        auto it = props_.find(name);
        if (it == props_.end())
            return fail(ExitCode::malformed, "{}: {}: {} lacks property '{}'", where_, subject_,
                        node_, name);
        return it->second;
    }
    bool has(const std::string& name) const { return props_.contains(name); }
    Result<std::uint64_t> u64(const std::string& name) const {
        SVM_TRY(b, raw(name));
        if (b.size() != 8)
            return fail(ExitCode::malformed, "{}: {}: {}/{} must be a 64-bit value", where_,
                        subject_, node_, name);
        return be_value(b);
    }
    Result<std::uint32_t> u32(const std::string& name) const {
        SVM_TRY(b, raw(name));
        if (b.size() != 4)
            return fail(ExitCode::malformed, "{}: {}: {}/{} must be a 32-bit value", where_,
                        subject_, node_, name);
        return static_cast<std::uint32_t>(be_value(b));
    }
    // A NUL-terminated printable ASCII string with no embedded NUL.
    Result<std::string> str(const std::string& name) const {
        SVM_TRY(b, raw(name));
        if (b.empty() || b.back() != std::byte{0})
            return fail(ExitCode::malformed, "{}: {}: {}/{} must be a string", where_, subject_,
                        node_, name);
        std::string s;
        for (std::size_t i = 0; i + 1 < b.size(); ++i) {
            auto c = static_cast<unsigned char>(b[i]);
            if (c < 0x20 || c > 0x7e)
                return fail(ExitCode::malformed, "{}: {}: {}/{} must be one printable string",
                            where_, subject_, node_, name);
            s.push_back(static_cast<char>(c));
        }
        return s;
    }
    Result<std::vector<std::byte>> bytes(const std::string& name) const {
        SVM_TRY(b, raw(name));
        return std::vector<std::byte>(b.begin(), b.end());
    }
    // Exactly `size` bytes.
    Result<std::vector<std::byte>> bytes(const std::string& name, std::size_t size) const {
        SVM_TRY(b, raw(name));
        if (b.size() != size)
            return fail(ExitCode::malformed, "{}: {}: {}/{} must be {} bytes, not {}", where_,
                        subject_, node_, name, size, b.size());
        return std::vector<std::byte>(b.begin(), b.end());
    }

  private:
    const Props& props_;
    std::string node_;
    const std::string& where_;
    std::string subject_;
};

} // namespace svmkit::format::fdt
