// trico HLS library: matrix-vector product y = W x with packed weights streamed from external memory.
// G is the quantization group size along K (K for per-channel, K again for float weights);
// U is the unroll factor along K: U weights are decoded and multiplied per cycle.
#ifndef TRICO_MATVEC_H
#define TRICO_MATVEC_H

#include "trico_weights.h"

namespace trico {

// One output row: dot products per group in the code domain, then one scale (and min) per group.
template <class Fmt, class Tx, class Tacc, int K, int G, int U>
float matvec_row(const Tx x[K], const wbyte_t *codes, const float *fw, const float *scales,
                 const float *mins, long n) {
    float row = 0.0f;
group_loop:
    for (int g = 0; g < K / G; g++) {
        Tacc part[U];
#pragma HLS ARRAY_PARTITION variable = part complete
        Tacc xsum = 0;
        for (int u = 0; u < U; u++) {
#pragma HLS UNROLL
            part[u] = 0;
        }
    k_loop:
        for (int kk = 0; kk < G / U; kk++) {
#pragma HLS PIPELINE II = 1
        lane_loop:
            for (int u = 0; u < U; u++) {
#pragma HLS UNROLL
                const int k = g * G + kk * U + u;
                Fmt::template mac<Tacc, Tx>(part[u], x[k], codes, fw, n, k, K);
                if (Fmt::asym) xsum += Tacc(x[k]);
            }
        }
        Tacc acc = 0;
        for (int u = 0; u < U; u++) {
#pragma HLS UNROLL
            acc += part[u];
        }
        if (Fmt::scaled) {
            row += to_f(acc) * scales[n * (K / G) + g];
            if (Fmt::asym) row += to_f(xsum) * mins[n * (K / G) + g];
        } else {
            row += to_f(acc);
        }
    }
    return row;
}

template <class Fmt, class Tx, class Ty, class Tacc, int N, int K, int G, int U>
void matvec(const Tx x[K], const wbyte_t *codes, const float *fw, const float *scales, const float *mins,
            Ty y[N]) {
row_loop:
    for (int n = 0; n < N; n++) {
        y[n] = Ty(matvec_row<Fmt, Tx, Tacc, K, G, U>(x, codes, fw, scales, mins, n));
    }
}

// Mat-vec with the residual add fused into its output: y = W x + r.
template <class Fmt, class Tx, class Tr, class Ty, class Tacc, int N, int K, int G, int U>
void matvec_add(const Tx x[K], const wbyte_t *codes, const float *fw, const float *scales, const float *mins,
                const Tr r[N], Ty y[N]) {
row_loop:
    for (int n = 0; n < N; n++) {
        y[n] = Ty(matvec_row<Fmt, Tx, Tacc, K, G, U>(x, codes, fw, scales, mins, n) + to_f(r[n]));
    }
}

}  // namespace trico

#endif
