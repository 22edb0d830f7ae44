// Which sanitizer a test binary runs under (GCC defines __SANITIZE_*__,
// Clang answers __has_feature): tests scale down or skip what a sanitizer
// makes slow or meaningless.
#pragma once

namespace aidbtest {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

// Under ASan or TSan.
inline constexpr bool kSanitized = kThreadSanitizer || kAddressSanitizer;

}  // namespace aidbtest
