// Shared test-bench helpers for the trico HLS kernel suite: a fixed LCG for inputs, plain-text dumps.
#pragma once
#include <cstdint>
#include <cstdio>
#include <type_traits>

static uint32_t tb_lcg_state = 12345u;

static uint32_t tb_next() {
  tb_lcg_state = tb_lcg_state * 1664525u + 1013904223u;
  return tb_lcg_state;
}

// Integers are uniform in [lo, hi]; floating point values uniform in [lo, hi).
template <typename T>
void tb_fill(T* p, long n, double lo, double hi) {
  for (long i = 0; i < n; i++) {
    if (std::is_floating_point<T>::value) {
      p[i] = (T)(lo + (hi - lo) * (double)(tb_next() >> 8) / 16777216.0);
    } else {
      unsigned long long span = (unsigned long long)((long long)hi - (long long)lo) + 1ull;
      unsigned long long r = span >= (1ull << 32) ? tb_next() : tb_next() % span;
      p[i] = (T)((long long)lo + (long long)r);
    }
  }
}

template <typename T>
void tb_print(const char* name, const T* p, long n) {
  printf("# %s\n", name);
  for (long i = 0; i < n; i++) {
    if (std::is_floating_point<T>::value) {
      printf("%.9g\n", (double)p[i]);
    } else if (std::is_signed<T>::value) {
      printf("%lld\n", (long long)p[i]);
    } else {
      printf("%llu\n", (unsigned long long)p[i]);
    }
  }
}
