// Result<T>: a value or an Error, in the style of C++23's std::expected.
//
// svmkit keeps its own small type instead of std::expected because the
// analysis tools of Debian 12 (clang 14: libFuzzer, clang-tidy) cannot parse
// libstdc++ 12's <expected>; this header is plain C++20.
//
// Invariant: a Result holds exactly one of a value or an error.
#pragma once

#include <cstdlib>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace svmkit {

template <typename E>
class Unexpected {
  public:
    explicit Unexpected(E e) : error_(std::move(e)) {}
    E& error() & { return error_; }
    E&& error() && { return std::move(error_); }
    const E& error() const& { return error_; }

  private:
    E error_;
};

template <typename E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
    return Unexpected<std::decay_t<E>>(std::forward<E>(e));
}

template <typename T, typename E>
class [[nodiscard]] BasicResult {
  public:
    using value_type = T;
    using error_type = E;

    template <typename U = T,
              typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                          !std::is_same_v<std::decay_t<U>, BasicResult> &&
                                          !std::is_same_v<std::decay_t<U>, Unexpected<E>>>>
    BasicResult(U&& value) : v_(std::in_place_index<0>, std::forward<U>(value)) {}
    template <typename G>
    BasicResult(Unexpected<G> u) : v_(std::in_place_index<1>, std::move(u).error()) {}

    [[nodiscard]] bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& operator*() & { return checked_value(); }
    const T& operator*() const& { return const_cast<BasicResult*>(this)->checked_value(); }
    T&& operator*() && { return std::move(checked_value()); }
    T* operator->() { return &checked_value(); }
    const T* operator->() const { return &const_cast<BasicResult*>(this)->checked_value(); }
    T& value() & { return checked_value(); }
    const T& value() const& { return const_cast<BasicResult*>(this)->checked_value(); }
    template <typename U>
    T value_or(U&& fallback) const& {
        return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
    }

    E& error() & { return checked_error(); }
    const E& error() const& { return const_cast<BasicResult*>(this)->checked_error(); }
    E&& error() && { return std::move(checked_error()); }

  private:
    // Using the wrong alternative is a programming error: stop at once.
    T& checked_value() {
        if (v_.index() != 0)
            std::abort();
        return std::get<0>(v_);
    }
    E& checked_error() {
        if (v_.index() != 1)
            std::abort();
        return std::get<1>(v_);
    }
    std::variant<T, E> v_;
};

template <typename E>
class [[nodiscard]] BasicResult<void, E> {
  public:
    using value_type = void;
    using error_type = E;

    BasicResult() = default;
    template <typename G>
    BasicResult(Unexpected<G> u) : error_(std::move(u).error()) {}

    [[nodiscard]] bool has_value() const { return !error_.has_value(); }
    explicit operator bool() const { return has_value(); }
    void operator*() const {}
    E& error() & { return checked_error(); }
    const E& error() const& { return const_cast<BasicResult*>(this)->checked_error(); }
    E&& error() && { return std::move(checked_error()); }

  private:
    E& checked_error() {
        if (!error_)
            std::abort();
        return *error_;
    }
    std::optional<E> error_;
};

} // namespace svmkit
