#include "wrapper/json.hpp"

#include <fmt/format.h>

namespace svmkit::cli {

void JsonWriter::separate() {
    if (first_.empty())
        return;
    if (!first_.back())
        out_ += ",";
    first_.back() = false;
    out_ += "\n" + std::string(first_.size() * 2, ' ');
}

void JsonWriter::key(std::string_view k) {
    separate();
    if (!k.empty())
        out_ += quote(k) + ": ";
}

JsonWriter& JsonWriter::begin_object(std::string_view k) {
    key(k);
    out_ += "{";
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::close(char bracket) {
    bool empty = first_.back();
    first_.pop_back();
    if (!empty)
        out_ += "\n" + std::string(first_.size() * 2, ' ');
    out_ += bracket;
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    return close('}');
}

JsonWriter& JsonWriter::begin_array(std::string_view k) {
    key(k);
    out_ += "[";
    first_.push_back(true);
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    return close(']');
}

JsonWriter& JsonWriter::value(std::string_view k, std::string_view v) {
    key(k);
    out_ += quote(v);
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view k, std::uint64_t v) {
    key(k);
    out_ += std::to_string(v);
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view k, bool v) {
    key(k);
    out_ += v ? "true" : "false";
    return *this;
}

JsonWriter& JsonWriter::null(std::string_view k) {
    key(k);
    out_ += "null";
    return *this;
}

JsonWriter& JsonWriter::element(std::string_view v) {
    separate();
    out_ += quote(v);
    return *this;
}

std::string JsonWriter::quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (u < 0x20 || u >= 0x7f)
                out += fmt::format("\\u{:04x}", u);
            else
                out.push_back(c);
        }
    }
    return out + "\"";
}

} // namespace svmkit::cli
