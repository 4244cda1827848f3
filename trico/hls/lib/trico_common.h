// trico HLS library: shared types and the scalar helpers every stage uses.
// Plain Vitis-HLS-style C++; compiles with g++ against the ap_int/ap_fixed headers of hls4ml.
#ifndef TRICO_COMMON_H
#define TRICO_COMMON_H

#include <cmath>
#include <cstdint>

#include "ap_fixed.h"
#include "ap_int.h"

namespace trico {

// One byte of packed weight codes as it sits in external memory.
typedef uint8_t wbyte_t;

// Converting through float works for both float and ap_fixed operands.
template <class T>
inline float to_f(const T &x) {
    return static_cast<float>(x);
}

// Nonlinear functions are evaluated in fp32. Under g++ this stands in for the fixed-point
// versions in Vitis' hls_math, which are not shipped with the headers used here.
inline float f_exp(float x) { return std::exp(x); }
inline float f_rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline float f_sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Duplicate a vector so each consumer of a DATAFLOW region reads its own copy.
template <class T, int N>
void fork2(const T in[N], T out_a[N], T out_b[N]) {
fork_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        out_a[i] = in[i];
        out_b[i] = in[i];
    }
}

// Element-wise sum (the residual connections when not fused into a mat-vec).
template <class Ta, class Tb, class Ty, int N>
void add(const Ta a[N], const Tb b[N], Ty y[N]) {
add_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        y[i] = Ty(to_f(a[i]) + to_f(b[i]));
    }
}

// Load a float vector (from external memory) into an on-chip buffer of type T.
template <class T, int N>
void load_vec(const float *src, T dst[N]) {
load_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        dst[i] = T(src[i]);
    }
}

// Store an on-chip vector back as float.
template <class T, int N>
void store_vec(const T src[N], float *dst) {
store_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        dst[i] = to_f(src[i]);
    }
}

// Index of the largest element (greedy decoding); the first one wins ties, like torch.argmax.
template <class T, int N>
int argmax(const T x[N]) {
    int best = 0;
    float best_v = to_f(x[0]);
argmax_loop:
    for (int i = 1; i < N; i++) {
#pragma HLS PIPELINE II = 1
        float v = to_f(x[i]);
        if (v > best_v) {
            best_v = v;
            best = i;
        }
    }
    return best;
}

}  // namespace trico

#endif
