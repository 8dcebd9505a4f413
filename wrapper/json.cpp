#include "wrapper/json.hpp"

#include <cassert>

namespace svmkit::cli {

std::string json_text(const Json& j) {
    return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

namespace {
bool printed = false;
}

void print_json(const Json& j, std::FILE* out) {
    std::fputs(json_text(j).c_str(), out);
    printed = true;
}

bool json_printed() {
    return printed;
}

Json& JsonWriter::put(std::string_view key, Json v) {
    if (open_.empty()) {
        root_ = std::move(v);
        return root_;
    }
    Json& parent = *open_.back();
    if (parent.is_array()) {
        parent.push_back(std::move(v));
        return parent.back();
    }
    Json& slot = parent[std::string(key)];
    slot = std::move(v);
    return slot;
}

JsonWriter& JsonWriter::begin_object(std::string_view key) {
    open_.push_back(&put(key, Json::object()));
    return *this;
}

JsonWriter& JsonWriter::end_object() {
    assert(!open_.empty() && open_.back()->is_object());
    open_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::begin_array(std::string_view key) {
    open_.push_back(&put(key, Json::array()));
    return *this;
}

JsonWriter& JsonWriter::end_array() {
    assert(!open_.empty() && open_.back()->is_array());
    open_.pop_back();
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view key, std::string_view v) {
    put(key, Json(std::string(v)));
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view key, std::uint64_t v) {
    put(key, Json(v));
    return *this;
}

JsonWriter& JsonWriter::value(std::string_view key, bool v) {
    put(key, Json(v));
    return *this;
}

JsonWriter& JsonWriter::json(std::string_view key, Json v) {
    put(key, std::move(v));
    return *this;
}

JsonWriter& JsonWriter::null(std::string_view key) {
    put(key, Json(nullptr));
    return *this;
}

JsonWriter& JsonWriter::element(std::string_view v) {
    put({}, Json(std::string(v)));
    return *this;
}

std::string JsonWriter::str() const {
    assert(open_.empty());
    return json_text(root_);
}

} // namespace svmkit::cli
