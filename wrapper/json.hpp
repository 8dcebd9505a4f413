// The CLI's machine-readable output, built with nlohmann::ordered_json
// (Debian's nlohmann-json3-dev): keys stay in the order written, so the
// documents are stable, and escaping is the library's. Strings that are not
// valid UTF-8 (a file name is bytes) have each bad byte replaced by U+FFFD
// (docs/cli.md, "JSON"); fields that must be exact are hex.
//
// The writer keeps the streaming shape the commands were written in:
// begin/end pairs around values, checked to balance.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::cli {

using Json = nlohmann::ordered_json;

// One JSON document as text (indented, final newline); invalid UTF-8 replaced.
std::string json_text(const Json& j);

// Prints a command's JSON document to `out` and notes that one was printed:
// a command that prints its report and then fails (verify, boot) gets no
// second document, the error object, after it (main.cpp).
void print_json(const Json& j, std::FILE* out);
bool json_printed();

class JsonWriter {
  public:
    JsonWriter& begin_object(std::string_view key = {});
    JsonWriter& end_object();
    JsonWriter& begin_array(std::string_view key = {});
    JsonWriter& end_array();
    JsonWriter& value(std::string_view key, std::string_view v);
    JsonWriter& value(std::string_view key, const char* v) {
        return value(key, std::string_view(v));
    }
    JsonWriter& value(std::string_view key, const std::string& v) {
        return value(key, std::string_view(v));
    }
    JsonWriter& value(std::string_view key, std::uint64_t v);
    JsonWriter& value(std::string_view key, bool v);
    JsonWriter& json(std::string_view key, Json v);
    JsonWriter& null(std::string_view key);
    // Array elements.
    JsonWriter& element(std::string_view v);
    // The document, indented, with a final newline.
    [[nodiscard]] std::string str() const;
    [[nodiscard]] const Json& document() const { return root_; }

  private:
    Json& put(std::string_view key, Json v);
    Json root_;
    std::vector<Json*> open_; // the containers begun and not yet ended
};

} // namespace svmkit::cli
