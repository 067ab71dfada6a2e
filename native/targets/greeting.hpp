// A coroutine whose parameter must outlive the caller's argument. Coroutine
// parameters are copied into the frame, but a string_view copies only the view:
// the characters still belong to the caller, who is gone by the first resume.
#ifndef STRESSCORO_TARGETS_GREETING_HPP_INCLUDED
#define STRESSCORO_TARGETS_GREETING_HPP_INCLUDED

#include "task.hpp"

#include <string>
#include <string_view>

namespace stresscoro::targets {

/// Counts the vowels of `name`, reading it after the first suspension.
inline task<> count_vowels_copy(std::string name) {
    int vowels = 0;
    for (char c : name) vowels += (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u');
    co_return vowels;
}

/// The same, but the frame keeps only a view of the caller's string.
inline task<> count_vowels_view(std::string_view name) {
    int vowels = 0;
    for (char c : name) vowels += (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u');
    co_return vowels;
}

/// A name long enough to live on the heap rather than in the small-string buffer.
inline std::string make_name(int length) { return std::string(static_cast<std::size_t>(length) + 24, 'a'); }

}  // namespace stresscoro::targets

#endif  // STRESSCORO_TARGETS_GREETING_HPP_INCLUDED
