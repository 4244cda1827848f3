// trico HLS library: the SiLU gate of the MLP, y = silu(g) * u (the multiply fused in).
#ifndef TRICO_MLP_H
#define TRICO_MLP_H

#include "trico_common.h"

namespace trico {

template <class Tg, class Tu, class Ty, int N>
void silu_gate(const Tg g[N], const Tu u[N], Ty y[N]) {
gate_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        const float gv = to_f(g[i]);
        y[i] = Ty(gv * f_sigmoid(gv) * to_f(u[i]));
    }
}

// Unfused pieces, for graphs compiled without the fuse_silu_gate pass.
template <class Tx, class Ty, int N>
void silu(const Tx x[N], Ty y[N]) {
silu_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        const float v = to_f(x[i]);
        y[i] = Ty(v * f_sigmoid(v));
    }
}

template <class Ta, class Tb, class Ty, int N>
void mul(const Ta a[N], const Tb b[N], Ty y[N]) {
mul_loop:
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
        y[i] = Ty(to_f(a[i]) * to_f(b[i]));
    }
}

}  // namespace trico

#endif
