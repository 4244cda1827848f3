// trico HLS library: numerically stable softmax over the first n of up to MAXN scores.
#ifndef TRICO_SOFTMAX_H
#define TRICO_SOFTMAX_H

#include "trico_common.h"

namespace trico {

template <class Tx, class Ty, int MAXN>
void softmax(const Tx x[MAXN], int n, Ty y[MAXN]) {
    float mx = to_f(x[0]);
max_loop:
    for (int i = 1; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = MAXN
        const float v = to_f(x[i]);
        mx = v > mx ? v : mx;
    }
    float e[MAXN];
    float sum = 0.0f;
exp_loop:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = MAXN
        e[i] = f_exp(to_f(x[i]) - mx);
        sum += e[i];
    }
    const float inv = 1.0f / sum;
norm_loop:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT max = MAXN
        y[i] = Ty(e[i] * inv);
    }
}

}  // namespace trico

#endif
