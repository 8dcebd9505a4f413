// A small streaming JSON writer for the CLI's machine-readable output.
// Keys are emitted in the order written, so output is stable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::cli {

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
    JsonWriter& value(std::string_view key, std::uint64_t v);
    JsonWriter& value(std::string_view key, bool v);
    JsonWriter& null(std::string_view key);
    // Array elements.
    JsonWriter& element(std::string_view v);
    [[nodiscard]] std::string str() const { return out_ + "\n"; }

  private:
    JsonWriter& close(char bracket);
    void key(std::string_view k);
    void separate();
    static std::string quote(std::string_view s);
    std::string out_;
    std::vector<bool> first_; // per open container: nothing written yet
};

} // namespace svmkit::cli
