// trico HLS library: RMSNorm, y = w * x / sqrt(mean(x^2) + eps).
#ifndef TRICO_NORM_H
#define TRICO_NORM_H

#include "trico_common.h"

namespace trico {

template <class Tx, class Ty, class Tacc, int N>
void rmsnorm(const Tx x[N], const float *weight, float eps, Ty y[N]) {
    Tacc ss = 0;
sumsq_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        ss += Tacc(x[i] * x[i]);
    }
    const float inv = f_rsqrt(to_f(ss) / N + eps);
scale_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        y[i] = Ty(weight[i] * (to_f(x[i]) * inv));
    }
}

}  // namespace trico

#endif
